"""Export a pre-trained svd_mm 3D backbone for use outside OpenMMLab.

Example::

    # plain PyTorch state dict of ResNet3D
    python tools/model_converters/export_backbone.py \\
        work_dirs/vdt_r3d18_8xb32-100e_in1k/epoch_100.pth r3d18_svd.pth

    # MONAI ResNet key layout, checked against the training config
    python tools/model_converters/export_backbone.py \\
        work_dirs/lits/epoch_500.pth r3d18_lits_monai.pth \\
        --format monai --depth 18 --config configs/lits/...py

The source is any svd_mm checkpoint (a full mmpretrain / mmdet / mmseg
checkpoint: keys under ``--prefix``, default ``backbone.``; or a
backbone-only file of ``extract_backbone.py``, read without a prefix), read
with ``torch.load(weights_only=True)``. Two formats are written, each a bare
``{key: tensor}`` dict (``torch.save``), loadable with
``torch.load(path, weights_only=True)`` and ``model.load_state_dict``:

``--format plain`` (default): the keys of the svd_mm backbone module, e.g.
for ``ResNet3D`` (``mmcv.cnn.ConvModule`` layers)::

    conv1.conv.weight                       stem 7x7x7 convolution
    conv1.bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    layer{s}.{b}.conv{n}.conv.weight        block b of stage s, conv n
    layer{s}.{b}.conv{n}.bn.*               (n = 1, 2; 1, 2, 3 bottleneck)
    layer{s}.0.downsample.conv.weight       shortcut 'B' (1x1x1 conv + BN)
    layer{s}.0.downsample.bn.*

``--format monai``: the keys of ``monai.networks.nets.ResNet`` (MONAI
1.x)::

    conv1.weight, bn1.*, layer{s}.{b}.conv{n}.weight, layer{s}.{b}.bn{n}.*,
    layer{s}.0.downsample.0.weight, layer{s}.0.downsample.1.*

Which ResNet3D backbones export to MONAI:

- **refused** (no MONAI counterpart of the weights): ``ResNet3DV1c`` (deep
  stem), ``P3D``, fewer than 4 stages, norms other than batch norm (MONAI's
  ``ResNet`` builds its blocks with batch norm whatever its ``norm``
  argument), a stem kernel other than 7x7x7;
- **same features**: MONAI strides layers 2-4 by 2 along D, H and W, and
  its max-pool (kernel 3, padding 1) by 2 along D, H and W. svd_mm configs
  with ``strides=(1, 2, 2, 2)``, ``slice_strides=(1, 2, 2, 2)``,
  ``dilations=(1, 1, 1, 1)``, ReLU and either ``with_maxpool=False``
  (MONAI ``no_max_pool=True``) or ``maxpool_slice_stride=2`` compute the
  same features (any stem stride: MONAI's ``conv1_t_stride`` takes one per
  axis), e.g. the LiTS U-Net encoder
  (``configs/_base_/models/unet3d_r3d18.py``);
- **weights only**: every other stride / dilation setting, notably SVD's
  pre-training mode (no stride along D in the stem, max-pool and stages).
  The weights load (strides change no weight shape, as in svd_mm's own
  fine-tuning with other strides) but the MONAI network computes other
  features; the tool says so, or refuses with ``--require-same-features``.

The strides are not in the weights: they are read from ``--config`` or from
the config that mmengine stores in a training checkpoint (``meta.cfg``). The
MONAI constructor arguments are printed and written next to the output as
``<OUT>.json`` (``monai_kwargs``, e.g. ``widen_factor = base_channels /
64``, ``bias_downsample=False``, ``feed_forward=False``: the export has no
``fc``), and the exported weights are loaded into that MONAI network with
``strict=True`` as a check.
"""
import argparse
import inspect
import json
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

import svd_mm  # noqa: F401  (allow-list and safe checkpoint loader)
from svd_mm.apis import add_verbose_argument, filter_known_warnings
from svd_mm.utils.checkpoint_safety import save_checkpoint_atomic

#: (block, blocks per stage) -> depth of the ResNets MONAI and svd_mm share.
DEPTHS = {
    ('basic', (2, 2, 2, 2)): 18,
    ('basic', (3, 4, 6, 3)): 34,
    ('bottleneck', (3, 4, 6, 3)): 50,
    ('bottleneck', (3, 4, 23, 3)): 101,
    ('bottleneck', (3, 8, 36, 3)): 152,
}

#: svd_mm ResNet3D key -> MONAI ResNet key.
MONAI_KEY_RULES = [
    (re.compile(r'conv1\.conv\.weight'), 'conv1.weight'),
    (re.compile(r'conv1\.bn\.(\w+)'), r'bn1.\1'),
    (re.compile(r'(layer\d\.\d+)\.conv(\d)\.conv\.weight'),
     r'\1.conv\2.weight'),
    (re.compile(r'(layer\d\.\d+)\.conv(\d)\.bn\.(\w+)'), r'\1.bn\2.\3'),
    (re.compile(r'(layer\d\.\d+)\.downsample\.conv\.weight'),
     r'\1.downsample.0.weight'),
    (re.compile(r'(layer\d\.\d+)\.downsample\.bn\.(\w+)'),
     r'\1.downsample.1.\2'),
]


class NotRepresentableError(ValueError):
    """The backbone has no MONAI counterpart."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export svd_mm backbone weights as a plain PyTorch '
        'state dict or in the key layout of MONAI\'s ResNet')
    parser.add_argument('src', help='svd_mm checkpoint')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='prefix of the backbone keys in SRC, removed in the output '
        "(default: backbone.; '' keeps every key)")
    parser.add_argument(
        '--format',
        choices=['plain', 'monai'],
        default='plain',
        help='key layout of the output (default: plain)')
    parser.add_argument(
        '--depth',
        type=int,
        default=None,
        help='expected ResNet depth (checked against the weights)')
    parser.add_argument(
        '--config',
        default=None,
        help='config the checkpoint was trained with (default: the one '
        'stored in the checkpoint, if any); gives the strides')
    parser.add_argument(
        '--require-same-features',
        action='store_true',
        help='refuse a MONAI export whose network would compute other '
        'features than the svd_mm backbone (other strides)')
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def read_backbone(src: str, prefix: str = 'backbone.'
                  ) -> Tuple['OrderedDict', Optional[Config]]:
    """Read the backbone tensors of a checkpoint, and its stored config.

    Args:
        src (str): Checkpoint file.
        prefix (str): Prefix of the backbone keys ('' for none). A
            backbone-only file written by ``extract_backbone.py`` (its meta
            names the prefix it removed) is read without a prefix.

    Returns:
        tuple: The tensors without the prefix, and the config stored in the
        checkpoint's ``meta.cfg`` (None if there is none).
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'Checkpoint {src} does not exist')
    ckpt = CheckpointLoader.load_checkpoint(
        src, map_location='cpu', logger='silent')
    if not isinstance(ckpt, dict):
        raise ValueError(f'{src} holds a {type(ckpt).__name__}, expected a '
                         'dict of tensors')
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    state_dict = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items() if torch.is_tensor(v))
    if not state_dict:
        raise ValueError(f'{src} holds no tensors')
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    if prefix and not any(k.startswith(prefix) for k in state_dict):
        if 'prefix' in meta and 'source' in meta:  # extract_backbone.py
            prefix = ''
        else:
            keys = ', '.join(list(state_dict)[:4])
            raise ValueError(
                f'No key of {src} starts with {prefix!r} (keys: {keys}, '
                "...); pass the right --prefix, or --prefix '' for a "
                'backbone-only checkpoint')
    backbone = OrderedDict((k[len(prefix):], v)
                           for k, v in state_dict.items()
                           if k.startswith(prefix))
    cfg = None
    if isinstance(meta.get('cfg'), str):
        try:
            cfg = Config.fromstring(meta['cfg'], '.py')
        except Exception:  # an unreadable stored config: use --config
            cfg = None
    return backbone, cfg


def infer_resnet3d_arch(state_dict: Dict[str, torch.Tensor],
                        source: str = '<state_dict>') -> dict:
    """The ResNet3D architecture that the weights determine.

    Args:
        state_dict (dict): ResNet3D keys (no prefix).
        source (str): Named in the errors. Defaults to '<state_dict>'.

    Returns:
        dict: ``depth``, ``block`` ('basic' / 'bottleneck'),
        ``stage_blocks``, ``base_channels``, ``in_channels``,
        ``shortcut_type``, ``norm`` ('bn' / other).

    Raises:
        NotRepresentableError: If the weights are not those of a 4-stage
            ResNet3D with a 7x7x7 stem and batch norm of a known depth.
    """
    keys = list(state_dict)
    if any(k.startswith('stem.') for k in keys):
        raise NotRepresentableError(
            f'{source} is a ResNet3DV1c (deep stem: stem.0/1/2): MONAI\'s '
            'ResNet has a single 7x7x7 stem convolution')
    if 'conv1.conv.weight' not in state_dict:
        raise NotRepresentableError(
            f'{source} is not a ResNet3D state dict (no conv1.conv.weight; '
            f'keys e.g. {keys[:4]}); P3D and other backbones have no MONAI '
            'counterpart')
    stem = state_dict['conv1.conv.weight']
    if tuple(stem.shape[2:]) != (7, 7, 7):
        raise NotRepresentableError(
            f'{source}: stem kernel {tuple(stem.shape[2:])}, MONAI export '
            'needs 7x7x7')
    if not any(k.startswith('conv1.bn.') for k in keys):
        norm = sorted({k.split('.')[1] for k in keys if k.startswith(
            'conv1.') and k != 'conv1.conv.weight'})
        raise NotRepresentableError(
            f'{source} uses norm layers {norm}, not batch norm: MONAI\'s '
            'ResNet (1.x) builds its blocks with batch norm')
    blocks = {}
    for k in keys:
        m = re.match(r'layer(\d)\.(\d+)\.', k)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    stage_blocks = tuple(blocks.get(s, 0) for s in (1, 2, 3, 4))
    if sorted(blocks) != [1, 2, 3, 4]:
        raise NotRepresentableError(
            f'{source} has stages {sorted(blocks)}; MONAI\'s ResNet has '
            'four (layer1-4)')
    kind = 'bottleneck' if 'layer1.0.conv3.conv.weight' in state_dict \
        else 'basic'
    if (kind, stage_blocks) not in DEPTHS:
        raise NotRepresentableError(
            f'{source}: {kind} blocks {stage_blocks} per stage are no '
            f'ResNet depth MONAI builds ({sorted(set(DEPTHS.values()))})')
    return dict(
        depth=DEPTHS[(kind, stage_blocks)],
        block=kind,
        stage_blocks=stage_blocks,
        base_channels=int(stem.shape[0]),
        in_channels=int(stem.shape[1]),
        shortcut_type='B' if any('downsample.conv.' in k
                                 for k in keys) else 'A',
        norm='bn')


def to_monai_state_dict(state_dict: Dict[str, torch.Tensor]
                        ) -> 'OrderedDict':
    """Rename ResNet3D keys to MONAI ``ResNet`` keys (tensors unchanged)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in MONAI_KEY_RULES:
            if pattern.fullmatch(key):
                out[pattern.sub(repl, key)] = value
                break
        else:
            raise NotRepresentableError(
                f'ResNet3D key {key!r} has no MONAI ResNet counterpart')
    return out


def _backbone_cfg(cfg: Optional[Config]) -> Optional[dict]:
    if cfg is None:
        return None
    model = cfg.get('model') or {}
    backbone = model.get('backbone')
    return None if backbone is None else dict(backbone)


def compare_with_monai(backbone_cfg: Optional[dict], arch: dict
                       ) -> Tuple[dict, Optional[List[str]]]:
    """MONAI constructor arguments, and how its features would differ.

    Args:
        backbone_cfg (dict, optional): The svd_mm backbone config.
        arch (dict): :func:`infer_resnet3d_arch` of the weights.

    Returns:
        tuple: ``monai_kwargs`` and the list of differences (empty: same
        features; None: unknown, no config).
    """
    kwargs = dict(
        block=arch['block'],
        layers=list(arch['stage_blocks']),
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=3,
        n_input_channels=arch['in_channels'],
        conv1_t_size=7,
        shortcut_type=arch['shortcut_type'],
        bias_downsample=False,
        widen_factor=arch['base_channels'] / 64,
        feed_forward=False)
    if backbone_cfg is None:
        return kwargs, None
    from svd_mm.models.backbones import ResNet3D
    kind = backbone_cfg.get('type')
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    if kind.split('.')[-1] != 'ResNet3D':
        raise NotRepresentableError(
            f'the config builds a {kind} backbone; only ResNet3D exports to '
            'MONAI')
    defaults = {
        name: p.default
        for name, p in inspect.signature(ResNet3D.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    b = dict(defaults, **backbone_cfg)
    if b.get('depth') != arch['depth']:
        raise ValueError(f"the config's depth {b.get('depth')} does not "
                         f"match the weights' {arch['depth']}")
    norm = (b.get('norm_cfg') or {}).get('type')
    if norm not in ('BN3d', 'SyncBN', 'BN'):
        raise NotRepresentableError(
            f'norm_cfg type {norm!r}: MONAI\'s ResNet uses batch norm')
    differences = []
    for name, wanted in (('strides', (1, 2, 2, 2)),
                         ('slice_strides', (1, 2, 2, 2)),
                         ('dilations', (1, 1, 1, 1))):
        if tuple(b[name]) != wanted:
            differences.append(
                f'{name}={tuple(b[name])}, MONAI: {wanted}')
    if b['with_maxpool'] and b['maxpool_slice_stride'] != 2:
        differences.append(
            f"maxpool_slice_stride={b['maxpool_slice_stride']}, MONAI's "
            'max-pool strides D by 2')
    act = (b.get('act_cfg') or {}).get('type')
    if act != 'ReLU':
        differences.append(f'act_cfg type {act!r}, MONAI: ReLU')
    kwargs.update(
        conv1_t_stride=[
            b['stem_slice_stride'], b['stem_stride'], b['stem_stride']
        ],
        no_max_pool=not b['with_maxpool'])
    return kwargs, differences


def check_loads_into_monai(monai_state: Dict[str, torch.Tensor],
                           kwargs: dict) -> bool:
    """Load the weights into ``monai.networks.nets.ResNet(**kwargs)`` with
    ``strict=True``; False when MONAI is not installed."""
    try:
        from monai.networks.nets import ResNet
    except ImportError:
        return False
    net = ResNet(**kwargs)
    try:
        net.load_state_dict(monai_state, strict=True)
    except RuntimeError as e:
        raise NotRepresentableError(
            f'the exported keys do not load into MONAI ResNet({kwargs}): '
            f'{e}') from e
    return True


def export_backbone(src: str,
                    dst: str,
                    prefix: str = 'backbone.',
                    fmt: str = 'plain',
                    depth: Optional[int] = None,
                    config: Optional[str] = None,
                    require_same_features: bool = False) -> dict:
    """Write the backbone weights of ``src`` to ``dst``.

    Args:
        src (str): svd_mm checkpoint.
        dst (str): Output file (a bare state dict).
        prefix (str): Prefix of the backbone keys. Defaults to 'backbone.'.
        fmt (str): 'plain' or 'monai'. Defaults to 'plain'.
        depth (int, optional): Expected depth (MONAI). Defaults to None.
        config (str, optional): Training config (else the checkpoint's
            stored one). Defaults to None.
        require_same_features (bool): Refuse a MONAI export with other
            strides. Defaults to False.

    Returns:
        dict: The report written to ``<dst>.json``: ``format``, ``source``,
        ``prefix``, ``num_tensors``, ``num_params`` and, for MONAI,
        ``arch``, ``monai_kwargs``, ``same_features`` (True / False / None
        unknown), ``differences`` and ``checked_with_monai``.
    """
    if fmt not in ('plain', 'monai'):
        raise ValueError(f"format must be 'plain' or 'monai', got {fmt!r}")
    state_dict, stored_cfg = read_backbone(src, prefix)
    cfg = Config.fromfile(config) if config else stored_cfg
    report = dict(
        format=fmt,
        source=osp.basename(src),
        prefix=prefix,
        config=config or ('<stored in checkpoint>' if cfg else None),
        num_tensors=len(state_dict),
        num_params=int(sum(v.numel() for v in state_dict.values())))
    out = state_dict
    if fmt == 'monai':
        arch = infer_resnet3d_arch(state_dict, src)
        if depth is not None and depth != arch['depth']:
            raise NotRepresentableError(
                f'--depth {depth}, but the weights of {src} are a ResNet-'
                f"{arch['depth']} ({arch['block']} blocks "
                f"{arch['stage_blocks']})")
        kwargs, differences = compare_with_monai(_backbone_cfg(cfg), arch)
        if differences and require_same_features:
            raise NotRepresentableError(
                'the MONAI network would compute other features than the '
                'svd_mm backbone: ' + '; '.join(differences))
        out = to_monai_state_dict(state_dict)
        report.update(
            arch=dict(arch, stage_blocks=list(arch['stage_blocks'])),
            monai_kwargs=kwargs,
            same_features=None if differences is None else not differences,
            differences=differences,
            checked_with_monai=check_loads_into_monai(out, kwargs))
    save_checkpoint_atomic(out, dst)
    with open(osp.splitext(dst)[0] + '.json', 'w') as f:
        json.dump(report, f, indent=1)
    return report


def main(argv=None):
    args = parse_args(argv)
    filter_known_warnings(args.verbose)
    try:
        report = export_backbone(args.src, args.dst, args.prefix, args.format,
                                 args.depth, args.config,
                                 args.require_same_features)
    except (FileNotFoundError, ValueError, KeyError,
            pickle.UnpicklingError) as e:
        sys.exit(f'error: {e}')
    print(f"exported {report['num_tensors']} tensors "
          f"({report['num_params']} values) as {args.format} to {args.dst}")
    if args.format == 'monai':
        kwargs = ', '.join(f'{k}={v!r}'
                           for k, v in report['monai_kwargs'].items())
        print(f'MONAI network: monai.networks.nets.ResNet({kwargs})')
        if report['same_features'] is None:
            print('warning: no config (--config or in the checkpoint): the '
                  'strides are unknown; conv1_t_stride and no_max_pool are '
                  'yours to choose')
        elif not report['same_features']:
            print('warning: the weights load, but this MONAI network '
                  'computes other features than the svd_mm backbone: ' +
                  '; '.join(report['differences']))
        else:
            print('same features as the svd_mm backbone')
        if report['checked_with_monai']:
            print('checked: loads into that network with strict=True')


if __name__ == '__main__':
    main()
