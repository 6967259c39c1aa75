"""Convert the weights released by the authors of SVD-Net and MP3D.

==============  =========================================  ===================
--kind          source checkpoint                          target model
==============  =========================================  ===================
svd-r3d18-in1k  SVD-Net ResNet3D-18 pre-trained on         ResNet3D depth 18
                ImageNet (urmagicsmine/CSPR README,
                "Pre-trained Model"; mmcls 0.x)
mp3d63-coco     MP3D-63 pre-trained on MS-COCO,            P3D depth 63,
                ``mp3d63-d720bda1.pth`` (urmagicsmine/MP3D  arch='mp3d'
                README; mmdet 2.x)
==============  =========================================  ===================

Example::

    python tools/model_converters/convert_official.py --kind svd-r3d18-in1k \\
        res3d18_imagenet_BN_73.07-5ff2ecb7.pth \\
        checkpoints/r3d18-svd-release-in1k_backbone.pth

The source is read with ``torch.load(weights_only=True)`` (mmengine's
``CheckpointLoader`` with svd_mm's allow-list) and converted by
:data:`svd_mm.models.utils.OFFICIAL_CONVERTERS`, which maps every tensor
and says what it dropped and why. The result
``{'state_dict': ..., 'meta': {'source', 'kind', 'model', 'mapped',
'dropped'}}`` is written to a temporary file next to DST; unless
``--no-verify``, the target model is built and loads it through
``init_cfg=dict(type='Pretrained')``, as a config does; only then is it
renamed to DST. On any error nothing is written to DST. The backbone
snippet for the config is printed at the end.
"""
import argparse
import os.path as osp
import pickle
import sys
from typing import List, Optional

import torch
from mmengine.registry import MODELS

import svd_mm  # noqa: F401  (allow-list, safe loader, registries)
from svd_mm.apis import add_verbose_argument, filter_known_warnings
from svd_mm.models.utils import OFFICIAL_CONVERTERS, format_report
from svd_mm.utils.checkpoint_safety import save_checkpoint_atomic

# the registered backbone of each kind
TARGETS = {'svd-r3d18-in1k': 'ResNet3D', 'mp3d63-coco': 'P3D'}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert the released SVD-Net (ImageNet ResNet3D-18) '
        'or MP3D (COCO P3D-63) weights for svd_mm backbones.')
    parser.add_argument(
        '--kind',
        required=True,
        choices=sorted(OFFICIAL_CONVERTERS),
        help='which release the source is')
    parser.add_argument('src', help='downloaded checkpoint')
    parser.add_argument('dst', help='path of the converted checkpoint')
    parser.add_argument(
        '--in-channels',
        type=int,
        default=1,
        help='input channels of the target backbone (default: 1)')
    parser.add_argument(
        '--num-groups',
        type=int,
        default=32,
        help='groups of GroupNorm checkpoints (default: 32, as released)')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='do not load the result into the target backbone')
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def backbone_config(kind: str, report: dict, checkpoint: str) -> dict:
    """The backbone config that loads ``checkpoint``."""
    return dict(
        type=TARGETS[kind],
        **report['model'],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint))


def verify(kind: str, report: dict, checkpoint: str) -> None:
    """Build the target backbone and load ``checkpoint`` through its
    init_cfg; every tensor must be used."""
    model = MODELS.build(backbone_config(kind, report, checkpoint))
    model.init_weights()
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    state = model.state_dict()
    if sorted(state) != sorted(saved):
        raise ValueError(f'{TARGETS[kind]} does not hold exactly the '
                         f'converted tensors of {checkpoint}')


def convert(src: str,
            dst: str,
            kind: str,
            in_channels: int = 1,
            num_groups: int = 32,
            check: bool = True) -> dict:
    """Convert ``src``, verify it (``check``) and save it to ``dst``.

    Args:
        src (str): Source checkpoint.
        dst (str): Path of the converted checkpoint; written only when
            everything succeeded.
        kind (str): A key of ``OFFICIAL_CONVERTERS``.
        in_channels (int): Input channels of the target. Defaults to 1.
        num_groups (int): Groups of GN checkpoints. Defaults to 32.
        check (bool): Whether to load the result into the target backbone
            before renaming it to ``dst``. Defaults to True.

    Returns:
        dict: The importer's report.
    """
    state_dict, report = OFFICIAL_CONVERTERS[kind](
        src, in_channels=in_channels, num_groups=num_groups, logger='silent')
    meta = dict(
        source=osp.basename(src),
        kind=kind,
        model=report['model'],
        mapped=len(report['mapped']),
        dropped=dict(report['dropped']))
    save_checkpoint_atomic(
        dict(state_dict=state_dict, meta=meta),
        dst,
        check=(lambda tmp: verify(kind, report, tmp)) if check else None)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    filter_known_warnings(args.verbose)
    try:
        report = convert(args.src, args.dst, args.kind, args.in_channels,
                         args.num_groups, not args.no_verify)
    except (FileNotFoundError, KeyError, ValueError, TypeError,
            pickle.UnpicklingError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.exit(f'error: {message}')
    print(format_report(report))
    if not args.no_verify:
        print(f'verified: {TARGETS[args.kind]} loads every converted tensor')
    print(f'saved to {args.dst}')
    cfg = backbone_config(args.kind, report, args.dst)
    print('config: backbone=dict(' +
          ', '.join(f'{k}={v!r}' for k, v in cfg.items()) + ')')


if __name__ == '__main__':
    main()
