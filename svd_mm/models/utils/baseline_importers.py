"""Import the pre-trained weights of the baselines of SVD-Net.

Each importer maps the state dict of a public checkpoint onto an svd_mm
model and returns ``(state_dict, report)``; it logs how many tensors it
mapped and which it dropped, and why. A tensor whose shape does not fit the
target model raises an error that names the key and both shapes.

ResNet checkpoints (Med3D, 3D-ResNets, torchvision / mmpretrain 2D ResNets)
share one key layout: ``conv1``, ``bn1``, ``layer{i}.{j}.conv{k}`` /
``bn{k}`` and ``layer{i}.{j}.downsample.{0,1}``. It is mapped onto
:class:`~svd_mm.models.backbones.ResNet3D` (``conv1.conv``, ``conv1.bn``,
``layer{i}.{j}.conv{k}.conv`` / ``.bn``, ``layer{i}.{j}.downsample.conv`` /
``.bn``). The depth, the width (``base_channels``) and the shortcut type
(``'B'`` when the checkpoint has downsample weights, else the
parameter-free ``'A'``) are read from the checkpoint and the result is
checked against a ``ResNet3D`` built with them (on the meta device); the
report's ``model`` entry holds these arguments for the config. The
importers (each docstring says how the tensors change) are
:func:`convert_med3d` (Med3D / MedicalNet, Chen et al., 2019),
:func:`convert_kinetics_3d_resnet` (3D-ResNets-PyTorch, Hara et al., 2018),
:func:`inflate_2d_resnet` (I3D inflation of a 2D ResNet, Carreira and
Zisserman, 2017) and :func:`convert_acs_resnet` (a 2D ResNet for ACS
convolutions, Yang et al., 2021).

:func:`convert_genesis` maps Models Genesis (Zhou et al., 2019,
``Genesis_Chest_CT.pt``) onto
:class:`~svd_mm.models.segmentors.UNet3DGenesis`.
"""
import logging
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import MMLogger, print_log

from .weight_transfer import (_strip_module, adapt_first_conv_weight,
                              read_state_dict)

__all__ = [
    'convert_med3d', 'convert_kinetics_3d_resnet', 'inflate_2d_resnet',
    'convert_acs_resnet', 'convert_genesis', 'format_report',
    'BASELINE_CONVERTERS'
]

StateDict = Dict[str, torch.Tensor]
LoggerType = Union[MMLogger, logging.Logger, str, None]
Source = Union[str, StateDict]

# block counts of the depths that ResNet3D builds
_RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
_NORM = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
# (pattern of the common ResNet layout, replacement in ResNet3D); the norm
# layers are named bn{k} (BatchNorm) or, in mmcv-built GroupNorm models such
# as SVD-Net's released ResNet3D, gn{k}: ConvModule names them bn / gn
_RESNET_KEY_MAP = (
    (r'conv1\.weight', r'conv1.conv.weight'),
    (rf'(bn|gn)1\.{_NORM}', r'conv1.\1.\2'),
    (r'(layer\d+\.\d+)\.conv(\d)\.weight', r'\1.conv\2.conv.weight'),
    (rf'(layer\d+\.\d+)\.(bn|gn)(\d)\.{_NORM}', r'\1.conv\3.\2.\4'),
    (r'(layer\d+\.\d+)\.downsample\.0\.weight', r'\1.downsample.conv.weight'),
    (rf'(layer\d+\.\d+)\.downsample\.1\.{_NORM}',
     r'\1.downsample.{norm}.\2'),
)

_2D_HEADS = {r'fc\.': 'classifier of the 2D pre-training task'}

# Models Genesis (pytorch/unet3d.py): kernels are laid out (x, y, z) there
_GENESIS_BLOCKS = ('down_tr64', 'down_tr128', 'down_tr256', 'down_tr512',
                   'up_tr256', 'up_tr128', 'up_tr64')


def _new_report(layout: str) -> dict:
    return dict(
        layout=layout, mapped=[], adapted={}, dropped={}, added=[], model={})


def _load(source: Source) -> 'OrderedDict':
    """The state dict of a file (read safely, a clear error if the file is
    truncated or no checkpoint) or of a dict."""
    if isinstance(source, dict):
        return _strip_module(source)
    if not isinstance(source, str):
        raise TypeError('expected a checkpoint path or a state dict, got '
                        f'{type(source).__name__}')
    try:
        return read_state_dict(source, logger='silent')
    except (FileNotFoundError, ValueError, TypeError):
        raise
    except (RuntimeError, EOFError, OSError) as e:
        # torch: 'PytorchStreamReader failed reading zip archive', EOF, ...
        raise ValueError(
            f'cannot read checkpoint {source!r}: the file is truncated or '
            f'not a PyTorch checkpoint ({type(e).__name__}: '
            f'{" ".join(str(e).split())[:200]}); download it again') from None


def _backbone_prefix(keys) -> str:
    """``'backbone.'`` if a key starts with it (mmpretrain, mmdet), else
    ``''``."""
    return 'backbone.' if any(k.startswith('backbone.') for k in keys) else ''


def _block_counts(state_dict: StateDict) -> Dict[int, int]:
    """Stage index i -> number of blocks ``layer{i}.{j}`` of a ResNet."""
    blocks: Dict[int, int] = {}
    for key in state_dict:
        match = re.match(r'layer(\d+)\.(\d+)\.', key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    return blocks


def _shape(t: torch.Tensor) -> tuple:
    return tuple(t.shape)


def format_report(report: dict) -> str:
    """Describe an importer's report in a few lines.

    Args:
        report (dict): The report of an importer: ``layout``, ``mapped``
            (list of (source key, target key)), ``adapted`` (target key to
            the rule applied), ``dropped`` (source key to reason), ``added``
            (target keys not in the checkpoint, set to their initial value)
            and ``model`` (arguments of the target model).

    Returns:
        str: The description, one item per line.
    """
    lines = [f'{report["layout"]}: mapped {len(report["mapped"])} tensors']
    if report['model']:
        args = ', '.join(f'{k}={v!r}' for k, v in report['model'].items())
        lines[0] += f' onto {args}'
    for name, verb in (('adapted', 'changed'), ('dropped', 'dropped')):
        if not report[name] and name == 'adapted':
            continue
        lines.append(f'  {verb} {len(report[name])} tensors' +
                     (':' if report[name] else ''))
        # group the keys by rule / reason, in the order of the first key
        groups: Dict[str, List[str]] = OrderedDict()
        for key, why in report[name].items():
            groups.setdefault(why, []).append(key)
        lines += [f'    {_key_list(k)}: {why}' for why, k in groups.items()]
    if report['added']:
        lines.append(f'  added {len(report["added"])} tensors not in the '
                     f'checkpoint ({_key_list(report["added"])}): '
                     'BatchNorm counters set to 0 (older PyTorch)')
    return '\n'.join(lines)


def _complete(out: dict, target: dict, report: dict, source: str,
              model: str) -> 'OrderedDict[str, torch.Tensor]':
    """``out`` in the order of ``target``, with the BatchNorm counters it
    lacks added as 0 (and listed in ``report['added']``): checkpoints of
    PyTorch < 0.4.1, and some releases, have none.

    Raises:
        KeyError: ``out`` lacks another tensor of ``target``; the message
            names ``source``, ``model`` and the keys.
    """
    missing = [k for k in target if k not in out]
    counters = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in counters]
    if missing:
        raise KeyError(f'{source} lacks {len(missing)} tensor(s) of {model}: '
                       f'{_key_list(missing, 5)}')
    for key in counters:
        out[key] = torch.zeros((), dtype=torch.long)
        report['added'].append(key)
    return OrderedDict((k, out[k]) for k in target)


def _key_list(keys: List[str], num: int = 3) -> str:
    text = ', '.join(keys[:num])
    if len(keys) > num:
        text += f', ... ({len(keys)} keys)'
    return text


def _log_report(report: dict, logger: LoggerType) -> None:
    print_log(format_report(report), logger=logger)


def _map_key(key: str,
             key_map: tuple = _RESNET_KEY_MAP,
             norm: str = 'bn') -> Optional[str]:
    """The svd_mm name of ``key`` by the first (pattern, replacement) of
    ``key_map`` that matches it, or None; ``{norm}`` in the replacement
    becomes ``norm`` (``'bn'`` or ``'gn'``), for norms the source does not
    name (e.g. ``downsample.1``)."""
    for pattern, repl in key_map:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl.replace('{norm}', norm), key)
    return None


def _infer_resnet(state_dict: StateDict, layout: str) -> dict:
    """Depth, width and shortcut type of a ResNet state dict."""
    if 'conv1.weight' not in state_dict:
        raise KeyError(f'a {layout} checkpoint must hold the stem weight '
                       f"'conv1.weight', but its keys are e.g. "
                       f'{_key_list(list(state_dict), 5)}')
    blocks = _block_counts(state_dict)
    bottleneck = any(
        k.startswith('layer') and '.conv3.' in k for k in state_dict)
    if sorted(blocks) != [1, 2, 3, 4]:
        raise KeyError(f'a {layout} checkpoint must have the stages layer1 '
                       f'to layer4, but it has {sorted(blocks)}')
    counts = tuple(blocks[i] for i in (1, 2, 3, 4))
    depth = _RESNET_DEPTHS.get((counts, bottleneck))
    if depth is None:
        block = 'bottleneck' if bottleneck else 'basic'
        raise ValueError(
            f'the {layout} checkpoint has {counts} {block} blocks per stage, '
            'which is no depth of ResNet3D (18, 34: basic (2, 2, 2, 2), '
            '(3, 4, 6, 3); 50, 101, 152: bottleneck (3, 4, 6, 3), '
            '(3, 4, 23, 3), (3, 8, 36, 3))')
    shortcut = 'B' if any('.downsample.' in k for k in state_dict) else 'A'
    return dict(
        depth=depth,
        base_channels=state_dict['conv1.weight'].size(0),
        shortcut_type=shortcut)


def _target_resnet_state(model_args: dict) -> StateDict:
    """The state dict of a ResNet3D built on the meta device."""
    # imported here: the backbones import this package
    from svd_mm.models.backbones import ResNet3D
    with torch.device('meta'):
        model = ResNet3D(**model_args)
    return model.state_dict()


def _convert_resnet(source: Source,
                    layout: str,
                    transform: Callable[[str, torch.Tensor, torch.Size],
                                        Tuple[torch.Tensor, Optional[str]]],
                    head_keys: Dict[str, str],
                    depth: Optional[int] = None,
                    in_channels: int = 1,
                    conv_cfg: Optional[dict] = None,
                    logger: LoggerType = 'current',
                    prefix: Optional[str] = None,
                    norm_cfg: Optional[dict] = None) -> Tuple[StateDict, dict]:
    """Map a ResNet of the common layout onto ResNet3D.

    Args:
        source (str | dict): Checkpoint path or state dict.
        layout (str): Name of the source, for messages.
        transform (Callable): ``(target key, tensor, target shape) ->
            (tensor, rule or None)``, applied after the first convolution's
            channels are adapted; the rule is reported.
        head_keys (dict[str, str]): Regex of keys to drop -> reason.
        depth (int, optional): Expected depth; None accepts any.
        in_channels (int): Input channels of the target model.
        conv_cfg (dict, optional): ``conv_cfg`` of the target model.
        logger (MMLogger | str, optional): Where to log the report.
        prefix (str, optional): Prefix of the backbone keys (e.g.
            ``'backbone.'``); keys outside it are dropped.
        norm_cfg (dict, optional): ``norm_cfg`` of the target model, e.g.
            ``dict(type='GN', num_groups=32)``; None keeps ResNet3D's BN3d.
    """
    state_dict = _load(source)
    report = _new_report(layout)
    if prefix:  # '' (torchvision) and None keep every key
        inner = OrderedDict()
        for key, value in state_dict.items():
            if key.startswith(prefix):
                inner[key[len(prefix):]] = value
            else:
                report['dropped'][key] = (
                    f'outside the backbone (prefix {prefix!r})')
        state_dict = inner

    body = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        reason = next(
            (r for pattern, r in head_keys.items() if re.match(pattern, key)),
            None)
        if reason is not None:
            report['dropped'][key] = reason
        elif _map_key(key) is None:
            unknown.append(key)
        else:
            body[key] = value
    if unknown:
        raise KeyError(
            f'{len(unknown)} key(s) of the {layout} checkpoint are not part '
            f'of a ResNet of the expected layout: {_key_list(unknown, 5)} '
            '(a deep stem or another architecture?)')

    model_args = _infer_resnet(body, layout)
    if depth is not None and depth != model_args['depth']:
        raise ValueError(f'expected a {layout} ResNet-{depth}, but the '
                         f'checkpoint is a ResNet-{model_args["depth"]}')
    model_args['in_channels'] = in_channels
    if conv_cfg is not None:
        model_args['conv_cfg'] = conv_cfg
    norm = 'bn'
    if norm_cfg is not None:
        model_args['norm_cfg'] = norm_cfg
        norm = 'gn' if norm_cfg['type'] == 'GN' else 'bn'
    target = _target_resnet_state(model_args)

    out = OrderedDict()
    mismatched = []
    for key, value in body.items():
        new_key = _map_key(key, norm=norm)
        if new_key not in target:
            raise KeyError(
                f'{layout} key {key!r} maps to {new_key!r}, which ResNet3D('
                f'{model_args}) does not have')
        shape = target[new_key].shape
        rules = []
        if new_key == 'conv1.conv.weight' and value.size(1) != in_channels:
            value = adapt_first_conv_weight(value, in_channels, key)
            rules.append(f'summed over its {state_dict[key].size(1)} input '
                         'channels' if in_channels == 1 else
                         f'repeated over {in_channels} input channels and '
                         f'divided by {in_channels}')
        value, rule = transform(new_key, value, shape)
        if rule:
            rules.append(rule)
        if value.shape != shape:
            mismatched.append(
                f'{key} -> {new_key}: checkpoint {_shape(state_dict[key])}'
                f' vs ResNet3D {tuple(shape)}')
            continue
        if rules:
            report['adapted'][new_key] = '; '.join(rules)
        out[new_key] = value
        report['mapped'].append((key, new_key))
    if mismatched:
        raise ValueError(
            f'the {layout} checkpoint does not fit ResNet3D({model_args}): '
            f'{len(mismatched)} tensor(s) have another shape: ' +
            '; '.join(mismatched[:5]) +
            ('; ...' if len(mismatched) > 5 else ''))
    out = _complete(out, target, report, f'the {layout} checkpoint',
                    f'ResNet3D({model_args})')
    report['model'] = model_args
    _log_report(report, logger)
    return out, report


def _copy(key: str, value: torch.Tensor,
          shape: torch.Size) -> Tuple[torch.Tensor, Optional[str]]:
    return value, None


def _inflate(key: str, value: torch.Tensor,
             shape: torch.Size) -> Tuple[torch.Tensor, Optional[str]]:
    """Inflate a 2D kernel (O, I, k, k) to (O, I, k_d, k, k)."""
    if value.dim() == 4 and len(shape) == 5 and value.shape[2:] == shape[3:]:
        k_d = shape[2]
        inflated = value.unsqueeze(2).repeat(1, 1, k_d, 1, 1) / k_d
        return inflated, (f'inflated: repeated {k_d} times along depth and '
                          f'divided by {k_d}')
    return value, None


def convert_med3d(source: Source,
                  depth: Optional[int] = None,
                  in_channels: int = 1,
                  logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map a Med3D (MedicalNet) checkpoint onto ResNet3D.

    MedicalNet saves ``{'state_dict': {'module.conv1.weight': ...}}``: the
    stem (64, 1, 7, 7, 7), ``bn1``, ``layer{i}.{j}.conv{k}`` / ``bn{k}``,
    ``downsample.0`` / ``.1`` for the shortcut B (ResNet-50 and deeper; the
    released ResNet-18 and -34 use the parameter-free shortcut A) and the
    segmentation decoder ``conv_seg``, which is dropped. Med3D's strides
    (stem and max-pool stride 2 along every axis, no stride but dilation 2
    and 4 in layer3 and layer4) change no weight shape; set them in the
    config (``stem_slice_stride=2, maxpool_slice_stride=2,
    strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)``) to keep them.

    Args:
        source (str | dict): Checkpoint path, or its state dict (with or
            without ``module.``).
        depth (int, optional): Expected depth; None accepts the depth of
            the checkpoint. Defaults to None.
        in_channels (int): Input channels of the target ResNet3D.
            Defaults to 1.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The ResNet3D state dict and the report (see
        :func:`format_report`).
    """
    heads = {
        r'conv_seg\.': 'segmentation decoder of the Med3D pre-training tasks'
    }
    return _convert_resnet(source, 'Med3D', _copy, heads, depth, in_channels,
                           logger=logger)


def convert_kinetics_3d_resnet(
        source: Source,
        depth: Optional[int] = None,
        in_channels: int = 1,
        logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map a Kinetics 3D-ResNets-PyTorch checkpoint onto ResNet3D.

    Two layouts of kenshohara/3D-ResNets-PyTorch are read: the current one
    (``r3d18_K_200ep.pth``: ``{'state_dict': ...}`` without prefix, stem
    (64, 3, 7, 7, 7), shortcut B, ``fc`` of 700 Kinetics classes) and the
    CVPR 2018 one (``resnet-18-kinetics.pth``: ``module.`` prefix, shortcut
    A for ResNet-18/34, ``fc`` of 400 classes, no BatchNorm counters, which
    are then set to 0). The video axis T becomes the depth axis D. The RGB
    stem is reduced to ``in_channels`` with
    :func:`~svd_mm.models.utils.weight_transfer.adapt_first_conv_weight`
    (summed over the channels for one channel); ``fc`` is dropped.

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        depth (int, optional): Expected depth. Defaults to None (any).
        in_channels (int): Input channels of the target ResNet3D.
            Defaults to 1.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The ResNet3D state dict and the report.
    """
    heads = {r'fc\.': 'classifier of the Kinetics pre-training task'}
    return _convert_resnet(source, 'Kinetics 3D-ResNet', _copy, heads, depth,
                           in_channels, logger=logger)


def inflate_2d_resnet(
        source: Source,
        depth: Optional[int] = None,
        in_channels: int = 1,
        logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Inflate a 2D ImageNet ResNet into ResNet3D (I3D).

    Reads the torchvision layout (``conv1.weight``, ``bn1``,
    ``layer{i}.{j}.conv{k}``, ``downsample.{0,1}``, classifier ``fc``) and
    the mmpretrain one (the same under ``backbone.``, with ``head.*``). Each
    2D kernel (O, I, k, k) becomes (O, I, k_d, k, k): repeated k_d times
    along depth and divided by k_d, where k_d is the depth of the target
    kernel (7 in the stem, 3 in the blocks, 1 in the shortcuts). On a volume
    whose slices are all the same image, a 3D convolution with the inflated
    kernel then gives what the 2D convolution gives on the image (wherever
    the kernel does not reach the zero padding of the D borders). The RGB
    stem is summed over its channels for a one-channel target.

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        depth (int, optional): Expected depth. Defaults to None (any).
        in_channels (int): Input channels of the target ResNet3D.
            Defaults to 1.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The ResNet3D state dict and the report.
    """
    state_dict = _load(source)
    return _convert_resnet(state_dict, 'I3D (inflated 2D ResNet)', _inflate,
                           _2D_HEADS, depth, in_channels, logger=logger,
                           prefix=_backbone_prefix(state_dict))


def convert_acs_resnet(
        source: Source,
        depth: Optional[int] = None,
        in_channels: int = 1,
        logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map a 2D ImageNet ResNet onto an ACS ResNet3D.

    Same layouts as :func:`inflate_2d_resnet`. The 2D kernels are kept as
    they are: they are the parameters of the ACS convolutions of
    ``ResNet3D(conv_cfg=dict(type='ACSConv'))``
    (:class:`~svd_mm.models.utils.acs_conv.ACSConv3d`). The RGB stem is
    summed over its channels for a one-channel target.

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        depth (int, optional): Expected depth. Defaults to None (any).
        in_channels (int): Input channels of the target ResNet3D.
            Defaults to 1.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The state dict of the ACS ResNet3D and the
        report; ``report['model']`` includes
        ``conv_cfg=dict(type='ACSConv')``.
    """
    # 'ACSConv' is registered by this package's __init__ (acs_conv)
    state_dict = _load(source)
    return _convert_resnet(state_dict, 'ACS (2D ResNet)', _copy, _2D_HEADS,
                           depth, in_channels, dict(type='ACSConv'), logger,
                           prefix=_backbone_prefix(state_dict))


def convert_genesis(source: Source,
                    source_axes: str = 'xyz',
                    logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map a Models Genesis checkpoint onto UNet3DGenesis.

    Models Genesis (MrGiovanni/ModelsGenesis, ``pytorch/unet3d.py``) saves
    ``{'state_dict': {'module.down_tr64.ops.0.conv1.weight': ...}, ...}``
    with the blocks ``down_tr64``, ``down_tr128``, ``down_tr256``,
    ``down_tr512``, ``up_tr256``, ``up_tr128``, ``up_tr64`` (each
    ``ops.{0,1}.conv1`` / ``bn1``, the up blocks also ``up_conv``) and the
    output ``out_tr.final_conv``. The blocks go under ``backbone.`` and the
    output convolution becomes ``decode_head.conv_seg``.

    Models Genesis reads CT volumes as (x, y, z) arrays (SimpleITK's
    (z, y, x) transposed), while svd_mm volumes are (D, H, W) = (z, y, x).
    Every 3D kernel is therefore permuted from ``source_axes`` to (z, y, x),
    so that the network gives on an svd_mm volume what the original gives
    on the (x, y, z) array (the kernels are cubic, so shapes do not change).

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        source_axes (str): Axes of the checkpoint's kernels, a permutation
            of ``'xyz'``; ``'zyx'`` keeps them. Defaults to 'xyz'.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The UNet3DGenesis state dict and the report.
    """
    if sorted(source_axes) != ['x', 'y', 'z']:
        raise ValueError("source_axes must be a permutation of 'xyz', got "
                         f'{source_axes!r}')
    # position in the source kernel of each target axis (z, y, x)
    order = [2 + source_axes.index(axis) for axis in 'zyx']
    permute = order != [2, 3, 4]
    state_dict = _load(source)
    report = _new_report('Models Genesis')
    out = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        block = key.split('.', 1)[0]
        if block in _GENESIS_BLOCKS:
            new_key = f'backbone.{key}'
        elif key.startswith('out_tr.final_conv.'):
            new_key = 'decode_head.conv_seg.' + key[len('out_tr.final_conv.'):]
        else:
            unknown.append(key)
            continue
        if value.dim() == 5:
            if permute:
                value = value.permute(0, 1, *order).contiguous()
                report['adapted'][new_key] = (
                    f'kernel axes ({", ".join(source_axes)}) -> (z, y, x)')
        out[new_key] = value
        report['mapped'].append((key, new_key))
    if unknown:
        raise KeyError(
            f'{len(unknown)} key(s) of the Models Genesis checkpoint are not '
            f'part of its UNet3D: {_key_list(unknown, 5)}')
    present = {k.split('.')[1] for k in out if k.startswith('backbone.')}
    absent = [b for b in _GENESIS_BLOCKS if b not in present]
    if 'decode_head.conv_seg.weight' not in out:
        absent.append('out_tr')
    if ('down_tr64' in present
            and 'backbone.down_tr64.ops.0.conv1.weight' not in out):
        absent.append('down_tr64.ops.0.conv1')
    if absent:
        raise KeyError('the Models Genesis checkpoint lacks the block(s) '
                       f'{", ".join(absent)} of its UNet3D; its keys are '
                       f'e.g. {_key_list(list(state_dict), 5)}')
    first = out['backbone.down_tr64.ops.0.conv1.weight']
    report['model'] = dict(
        in_channels=first.size(1),
        base_channels=first.size(0),
        out_channels=out['decode_head.conv_seg.weight'].size(0))
    _log_report(report, logger)
    return out, report


BASELINE_CONVERTERS: Dict[str, Callable[..., Tuple[StateDict, dict]]] = {
    'med3d': convert_med3d,
    'kinetics': convert_kinetics_3d_resnet,
    'i3d': inflate_2d_resnet,
    'acs': convert_acs_resnet,
    'genesis': convert_genesis,
}
