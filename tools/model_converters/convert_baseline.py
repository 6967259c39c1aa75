"""Convert the checkpoint of a baseline initialisation for svd_mm models.

The baselines of SVD-Net's tables start from public checkpoints whose
layouts differ from svd_mm's models:

========  ==========================================  =====================
--type    source checkpoint                           target model
========  ==========================================  =====================
med3d     Med3D / MedicalNet ``resnet_18.pth`` ...    ResNet3D
kinetics  3D-ResNets-PyTorch ``r3d18_K_200ep.pth``,   ResNet3D
          ``resnet-18-kinetics.pth`` ...
i3d       2D ResNet (torchvision ``resnet18``,        ResNet3D (inflated)
          mmpretrain ``resnet18_8xb32_in1k``)
acs       2D ResNet (as for i3d)                      ResNet3D with
                                                      conv_cfg ACSConv
genesis   Models Genesis ``Genesis_Chest_CT.pt``      UNet3DGenesis
========  ==========================================  =====================

Example::

    python tools/model_converters/convert_baseline.py --type med3d \\
        pretrain/resnet_18_23dataset.pth checkpoints/r3d18_med3d.pth

The source is read with ``torch.load(weights_only=True)`` (mmengine's
``CheckpointLoader`` with svd_mm's allow-list), converted by
:data:`svd_mm.models.utils.BASELINE_CONVERTERS` and saved as
``{'state_dict': ..., 'meta': {'source', 'type', 'model', 'mapped',
'dropped'}}``; ``meta['model']`` holds the model arguments read from the
checkpoint. Then the target model is built and loads the new file through
``init_cfg=dict(type='Pretrained', checkpoint=DST)``, as a config does
(``--no-verify`` skips this), and the backbone / model snippet for the
config is printed.
"""
import argparse
import os.path as osp
import pickle
import sys
from typing import List, Optional


import svd_mm  # noqa: F401  (allow-list, safe loader, registries)
from svd_mm.apis import add_verbose_argument, filter_known_warnings
from svd_mm.models.utils import BASELINE_CONVERTERS, format_report
from svd_mm.utils.checkpoint_safety import save_checkpoint_atomic


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a baseline checkpoint (Med3D, Kinetics '
        '3D-ResNet, I3D-inflated or ACS 2D ResNet, Models Genesis) for '
        'svd_mm models.')
    parser.add_argument(
        '--type',
        required=True,
        choices=sorted(BASELINE_CONVERTERS),
        help='layout of the source checkpoint')
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='path of the converted checkpoint')
    parser.add_argument(
        '--depth',
        type=int,
        help='expected ResNet depth (default: read from the checkpoint)')
    parser.add_argument(
        '--in-channels',
        type=int,
        default=1,
        help='input channels of the target ResNet3D (default: 1)')
    parser.add_argument(
        '--source-axes',
        default='xyz',
        help="genesis: kernel axes of the source (default: 'xyz', Models "
        "Genesis' (x, y, z) arrays)")
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='do not load the result into the target model')
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def convert(src: str,
            dst: str,
            type: str,
            depth: Optional[int] = None,
            in_channels: int = 1,
            source_axes: str = 'xyz') -> dict:
    """Convert ``src`` and save it to ``dst``.

    Args:
        src (str): Source checkpoint.
        dst (str): Path of the converted checkpoint.
        type (str): A key of ``BASELINE_CONVERTERS``.
        depth (int, optional): Expected ResNet depth. Defaults to None.
        in_channels (int): Input channels of a target ResNet3D.
            Defaults to 1.
        source_axes (str): Kernel axes of a Models Genesis checkpoint.
            Defaults to 'xyz'.

    Returns:
        dict: The importer's report.
    """
    converter = BASELINE_CONVERTERS[type]
    if type == 'genesis':
        state_dict, report = converter(
            src, source_axes=source_axes, logger='silent')
    else:
        state_dict, report = converter(
            src, depth=depth, in_channels=in_channels, logger='silent')
    meta = dict(
        source=osp.basename(src),
        type=type,
        model=report['model'],
        mapped=len(report['mapped']),
        dropped=dict(report['dropped']))
    save_checkpoint_atomic(dict(state_dict=state_dict, meta=meta), dst)
    return report


def model_config(type: str, report: dict, dst: str) -> dict:
    """The config of the target model that loads ``dst``."""
    init_cfg = dict(type='Pretrained', checkpoint=dst)
    if type == 'genesis':
        model = report['model']
        cfg = dict(
            type='UNet3DGenesis',
            num_classes=max(model['out_channels'], 2),
            **model)
        if model['out_channels'] == 1:  # binary, with a sigmoid
            cfg['loss_decode'] = dict(
                type='CrossEntropyLoss', use_sigmoid=True)
        return dict(cfg, init_cfg=init_cfg)
    return dict(type='ResNet3D', **report['model'], init_cfg=init_cfg)


def verify(type: str, report: dict, dst: str) -> None:
    """Build the target model and load ``dst`` through its init_cfg."""
    cfg = model_config(type, report, dst)
    if type == 'genesis':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    else:
        from mmengine.registry import MODELS
    model = MODELS.build(cfg)
    model.init_weights()


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    filter_known_warnings(args.verbose)
    try:
        report = convert(args.src, args.dst, args.type, args.depth,
                         args.in_channels, args.source_axes)
        print(format_report(report))
        print(f'saved to {args.dst}')
        if not args.no_verify:
            verify(args.type, report, args.dst)
            print(f'verified: the target model loads {args.dst}')
    except (FileNotFoundError, KeyError, ValueError, TypeError,
            pickle.UnpicklingError) as e:
        sys.exit(f'error: {e}')
    cfg = model_config(args.type, report, args.dst)
    part = 'model' if args.type == 'genesis' else 'backbone'
    print(f'config: {part}=dict(' + ', '.join(f'{k}={v!r}'
                                              for k, v in cfg.items()) + ')')


if __name__ == '__main__':
    main()
