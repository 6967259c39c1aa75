"""Import the weights released by the authors of SVD-Net and MP3D.

Two checkpoints are public (on cloud drives; the headers of the
``*-release-*`` configs give the links):

- **SVD-Net ResNet3D-18, ImageNet** (urmagicsmine/CSPR, README "Pre-trained
  Model"): an mmcls 0.x ``ImageClassifier`` of CSPR's
  ``mmcls/models/backbones/resnet3d.py`` ``ResNet3D`` (depth 18, one input
  channel, 7x7x7 stem, no stride along D, BN3d as in CSPR's pre-training
  config, or GN in its ``_base_`` model), saved by mmcv 1.x as
  ``{'meta': ..., 'state_dict': {'backbone.*': ..., 'head.fc.*': ...}}``.
  The backbone keys are those of mmcls' ResNet (``conv1``, ``bn1`` /
  ``gn1``, ``layer{i}.{j}.conv{k}`` / ``bn{k}``, ``downsample.{0,1}``), so
  the mapping onto :class:`~svd_mm.models.backbones.ResNet3D` is the one of
  the baseline importers
  (:mod:`~svd_mm.models.utils.baseline_importers`); the 1000-class
  ``head.fc`` is dropped. :func:`convert_svd_release_r3d18`.
- **MP3D-63, MS-COCO** (urmagicsmine/MP3D, README "Pre-trained Model",
  ``mp3d63-d720bda1.pth``): an mmdet 2.x detector whose backbone is MP3D's
  ``P3D`` (``mmdet/models/backbones/p3d.py``; ``modified_p3d.py`` has the
  same tensors) with GN of 32 groups: ``conv1_custom`` (1x7x7) and
  ``norm1``, then bottlenecks ``layer{i}.{j}`` of ``conv1`` (1x1x1),
  ``conv2`` (S, 1x3x3), ``conv3`` (T, 3x1x1), ``conv4`` (1x1x1), each with
  ``norm_{k}``, and ``downsample.{0,1}``; T convolutions in all 16 blocks.
  It maps onto ``P3D(depth=63, arch='mp3d')``; the neck and the detection
  heads (and ``modified_P3D``'s slice-conversion layers, if present) are
  dropped. :func:`convert_mp3d_p3d`.

Every tensor of the source is mapped or dropped with a reason; a key that
fits neither, or a tensor whose shape differs from the target's, is refused
with an error naming the file, the key and both shapes. A checkpoint of the
other kind, a 2D ResNet or a file that cannot be read is refused with a
message saying what was expected.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional, Tuple

import torch

from .baseline_importers import (_NORM, LoggerType, Source, StateDict,
                                 _backbone_prefix, _block_counts, _complete,
                                 _convert_resnet, _copy, _key_list, _load,
                                 _log_report, _map_key, _new_report, _shape)
from .weight_transfer import adapt_first_conv_weight

__all__ = [
    'convert_svd_release_r3d18', 'convert_mp3d_p3d', 'OFFICIAL_CONVERTERS'
]

# parts of an mmdet 2.x two-stage detector besides the backbone
_DETECTOR_PARTS = ('neck.', 'rpn_head.', 'roi_head.', 'bbox_head.')
_SVD_RELEASE = ('an mmcls 0.x ImageClassifier checkpoint of SVD-Net\'s '
                'ResNet3D-18 (urmagicsmine/CSPR: backbone.conv1.weight of '
                'shape (64, 1, 7, 7, 7), backbone.layer{1..4}.*, '
                'head.fc.*)')
_MP3D_RELEASE = ('an mmdet 2.x detector checkpoint of MP3D\'s P3D '
                 '(urmagicsmine/MP3D mp3d63-d720bda1.pth: '
                 'backbone.conv1_custom.weight of shape (64, 1, 1, 7, 7), '
                 'backbone.layer{1..4}.*.conv{1..4} / norm_{1..4}, neck.*, '
                 'rpn_head.*, roi_head.*)')
# MP3D P3D -> svd_mm P3D(arch='mp3d'); {norm} is the norm name (gn / bn)
_P3D_KEY_MAP = (
    (r'conv1_custom\.weight', r'conv1.conv_s.conv.weight'),
    (rf'norm1\.{_NORM}', r'conv1.conv_s.{norm}.\1'),
    (r'(layer\d+\.\d+)\.conv1\.weight', r'\1.conv1.conv.weight'),
    (rf'(layer\d+\.\d+)\.norm_1\.{_NORM}', r'\1.conv1.{norm}.\2'),
    (r'(layer\d+\.\d+)\.conv2\.weight', r'\1.conv2.conv_s.conv.weight'),
    (rf'(layer\d+\.\d+)\.norm_2\.{_NORM}', r'\1.conv2.conv_s.{norm}.\2'),
    (r'(layer\d+\.\d+)\.conv3\.weight', r'\1.conv2.conv_t.conv.weight'),
    (rf'(layer\d+\.\d+)\.norm_3\.{_NORM}', r'\1.conv2.conv_t.{norm}.\2'),
    (r'(layer\d+\.\d+)\.conv4\.weight', r'\1.conv3.conv.weight'),
    (rf'(layer\d+\.\d+)\.norm_4\.{_NORM}', r'\1.conv3.{norm}.\2'),
    (r'(layer\d+\.\d+)\.downsample\.0\.weight', r'\1.downsample.conv.weight'),
    (rf'(layer\d+\.\d+)\.downsample\.1\.{_NORM}', r'\1.downsample.{norm}.\2'),
)
# modified_P3D's conversions of the 3D features to 2D (not backbone layers
# of svd_mm: its GTMNeck does this)
_MP3D_CONVERSIONS = r'(groupconv_\d|conv3d_all_\d)\.'
_P3D_DEPTHS = {(3, 4, 6, 3): 63, (3, 4, 23, 3): 131, (3, 8, 36, 3): 199}


def _name(source: Source) -> str:
    return repr(source) if isinstance(source, str) else '<state_dict>'


def _check_not_2d(state_dict: StateDict, key: str, source: Source,
                  expected: str) -> None:
    """Refuse a 2D network: its stem kernel has 4 dims, not 5."""
    weight = state_dict.get(key)
    if weight is not None and weight.dim() == 4:
        raise ValueError(
            f'checkpoint {_name(source)} holds a 2D network: {key!r} has '
            f'shape {_shape(weight)} (4 dims), expected {expected}. For a '
            '2D ImageNet ResNet use tools/model_converters/'
            'convert_baseline.py --type i3d or --type acs')


def _norm_cfg(state_dict: StateDict, num_groups: int) -> dict:
    """BN3d if the norms have running statistics, else GN."""
    if any(k.endswith('running_mean') for k in state_dict):
        return dict(type='BN3d', requires_grad=True)
    return dict(type='GN', num_groups=num_groups, requires_grad=True)


def convert_svd_release_r3d18(
        source: Source,
        in_channels: int = 1,
        num_groups: int = 32,
        logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map SVD-Net's released ImageNet ResNet3D-18 onto ResNet3D.

    Reads ``{'state_dict': {'backbone.*', 'head.fc.*'}}`` (an mmcls 0.x
    ``ImageClassifier``, ``module.`` stripped) or a bare backbone state
    dict. The norm layers are BN3d (``bn{k}``, with running statistics) or
    GN (``gn{k}``; ``num_groups`` is not stored in the weights, CSPR uses
    32). The backbone tensors are copied one to one (the first convolution
    adapted if ``in_channels`` is not 1); ``head.fc`` is dropped.

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        in_channels (int): Input channels of the target ResNet3D.
            Defaults to 1.
        num_groups (int): Groups of the GN layers, for a GN checkpoint.
            Defaults to 32.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The ResNet3D state dict and the report
        (:func:`~svd_mm.models.utils.format_report`); ``report['model']``
        holds the ResNet3D arguments (depth 18, width, shortcut B, norm).

    Raises:
        ValueError: For a detector (MP3D) or 2D checkpoint, a file that
            cannot be read, or a tensor of another shape.
        KeyError: For a key that is not part of the classifier.
    """
    state_dict = _load(source)
    keys = list(state_dict)
    if ('backbone.conv1_custom.weight' in state_dict
            or any(k.startswith(_DETECTOR_PARTS) for k in keys)):
        raise ValueError(
            f'checkpoint {_name(source)} is an mmdet detector checkpoint '
            f'(keys such as {_key_list(keys)}), but --kind svd-r3d18-in1k '
            f'expects {_SVD_RELEASE}; for MP3D\'s COCO weights use --kind '
            'mp3d63-coco')
    dropped, body = {}, OrderedDict()
    prefix = _backbone_prefix(keys)
    for key, value in state_dict.items():
        if key.startswith('head.'):
            dropped[key] = ('classifier of the ImageNet pre-training '
                            '(mmcls LinearClsHead)')
        elif key.startswith(prefix):
            body[key[len(prefix):]] = value
        else:
            raise KeyError(
                f'key {key!r} of checkpoint {_name(source)} is neither '
                f'backbone nor head; expected {_SVD_RELEASE}')
    _check_not_2d(body, 'conv1.weight', source, '(64, 1, 7, 7, 7)')
    state, report = _convert_resnet(
        body, 'SVD-Net release (ResNet3D-18, ImageNet)', _copy, {}, 18,
        in_channels, logger='silent', norm_cfg=_norm_cfg(body, num_groups))
    report['mapped'] = [(prefix + s, t) for s, t in report['mapped']]
    report['dropped'].update(dropped)
    _log_report(report, logger)
    return state, report


def _split_mp3d(state_dict: StateDict, source: Source, report: dict,
                prefix: str) -> 'OrderedDict':
    """The backbone tensors of an MP3D checkpoint, without its backbone
    ``prefix``; the detector parts go to ``report['dropped']``."""
    keys = list(state_dict)
    _check_not_2d({k[len(prefix):]: v
                   for k, v in state_dict.items() if k.startswith(prefix)},
                  'conv1.weight', source, '(64, 1, 1, 7, 7)')
    if any(k.startswith('head.') for k in keys) or (
            'backbone.conv1.weight' in state_dict
            and 'backbone.conv1_custom.weight' not in state_dict):
        raise ValueError(
            f'checkpoint {_name(source)} is a classifier checkpoint (keys '
            f'such as {_key_list(keys)}), but --kind mp3d63-coco expects '
            f'{_MP3D_RELEASE}; for SVD-Net\'s ImageNet ResNet3D-18 use '
            '--kind svd-r3d18-in1k')
    body = OrderedDict()
    for key, value in state_dict.items():
        inner = key[len(prefix):]
        if key.startswith(_DETECTOR_PARTS):
            part = key.split('.', 1)[0]
            report['dropped'][key] = (
                f'{part} of the COCO detector, not part of the backbone')
        elif key.startswith(prefix) and re.match(_MP3D_CONVERSIONS, inner):
            report['dropped'][key] = (
                "modified_P3D's 3D-to-2D conversion layer; svd_mm converts "
                'the features in its GTMNeck')
        elif key.startswith(prefix):
            body[inner] = value
        else:
            raise KeyError(
                f'key {key!r} of checkpoint {_name(source)} is neither '
                f'backbone nor detector part; expected {_MP3D_RELEASE}')
    if 'conv1_custom.weight' not in body:
        raise KeyError(
            f'checkpoint {_name(source)} has no P3D stem '
            f"'{prefix}conv1_custom.weight'; its keys are e.g. "
            f'{_key_list(keys, 5)}; expected {_MP3D_RELEASE}')
    return body


def _p3d_depth(body: StateDict, source: Source) -> int:
    blocks = _block_counts(body)
    counts = tuple(blocks.get(i, 0) for i in (1, 2, 3, 4))
    if counts not in _P3D_DEPTHS:
        raise ValueError(
            f'checkpoint {_name(source)} has {counts} blocks per stage, '
            'which is no depth of P3D (63: (3, 4, 6, 3), 131: (3, 4, 23, 3), '
            '199: (3, 8, 36, 3))')
    return _P3D_DEPTHS[counts]


def convert_mp3d_p3d(source: Source,
                     in_channels: int = 1,
                     num_groups: int = 32,
                     logger: LoggerType = 'current') -> Tuple[StateDict, dict]:
    """Map MP3D's released COCO P3D-63 onto ``P3D(arch='mp3d')``.

    Reads an mmdet 2.x detector checkpoint (``state_dict`` with
    ``backbone.*``, ``neck.*``, ``rpn_head.*``, ``roi_head.*``; a leading
    ``module.`` stripped) or a bare backbone state dict. The backbone keys
    are renamed (``conv1_custom`` -> ``conv1.conv_s.conv``, ``conv{1..4}``
    -> ``conv1.conv``, ``conv2.conv_s.conv``, ``conv2.conv_t.conv``,
    ``conv3.conv``, ``norm_{k}`` -> the norm of the same ConvModule,
    ``downsample.{0,1}`` -> ``downsample.conv`` / norm) and copied. The
    depth is read from the block counts; the norms are GN (``num_groups``,
    32 in MP3D) unless they have running statistics (BN3d).

    Args:
        source (str | dict): Checkpoint path, or its state dict.
        in_channels (int): Input channels of the target P3D. Defaults to 1.
        num_groups (int): Groups of the GN layers. Defaults to 32.
        logger (MMLogger | str, optional): Where to log the report.
            Defaults to 'current'.

    Returns:
        tuple[dict, dict]: The P3D state dict and the report;
        ``report['model']`` holds the P3D arguments.

    Raises:
        ValueError: For a classifier or 2D checkpoint, a file that cannot
            be read, or a tensor whose shape differs from P3D's.
        KeyError: For a key that cannot be placed, or a missing tensor.
    """
    state_dict = _load(source)
    report = _new_report('MP3D release (P3D, COCO)')
    prefix = _backbone_prefix(state_dict)
    body = _split_mp3d(state_dict, source, report, prefix)
    norm_cfg = _norm_cfg(body, num_groups)
    model_args = dict(
        depth=_p3d_depth(body, source),
        arch='mp3d',
        base_channels=body['conv1_custom.weight'].size(0),
        in_channels=in_channels,
        norm_cfg=norm_cfg)
    # imported here: the backbones import this package
    from svd_mm.models.backbones import P3D
    with torch.device('meta'):
        target = P3D(**model_args).state_dict()
    norm = 'gn' if norm_cfg['type'] == 'GN' else 'bn'
    out = _place(body, lambda k: _map_key(k, _P3D_KEY_MAP, norm), target,
                 source, prefix, in_channels, report)
    report['model'] = model_args
    _log_report(report, logger)
    return out, report


def _place(body: StateDict, mapper: Callable[[str], Optional[str]],
           target: StateDict, source: Source, prefix: str, in_channels: int,
           report: dict) -> 'OrderedDict':
    """Rename ``body`` with ``mapper`` and check it against ``target``:
    every key placed, equal shapes (the stem adapted to ``in_channels``),
    nothing missing but BatchNorm counters (added as 0)."""
    out = OrderedDict()
    stem = next(iter(target))
    for key, value in body.items():
        new_key = mapper(key)
        if new_key is None or new_key not in target:
            raise KeyError(
                f'cannot place key {prefix + key!r} '
                f'{_shape(value)} of checkpoint {_name(source)}: '
                + ('it is no tensor of the known layout' if new_key is None
                   else f'the target has no {new_key!r}'))
        shape = target[new_key].shape
        if new_key == stem and value.shape[1:2] != shape[1:2] \
                and value.shape[2:] == shape[2:]:
            value = adapt_first_conv_weight(value, in_channels, key)
            report['adapted'][new_key] = (
                f'first convolution adapted from {body[key].size(1)} to '
                f'{in_channels} input channels')
        if value.shape != shape:
            raise ValueError(
                f'tensor {prefix + key!r} of checkpoint {_name(source)} has '
                f'shape {_shape(value)}, but {new_key!r} of the target has '
                f'shape {tuple(shape)}')
        out[new_key] = value
        report['mapped'].append((prefix + key, new_key))
    return _complete(out, target, report, f'checkpoint {_name(source)}',
                     'the target')


OFFICIAL_CONVERTERS: Dict[str, Callable[..., Tuple[StateDict, dict]]] = {
    'svd-r3d18-in1k': convert_svd_release_r3d18,
    'mp3d63-coco': convert_mp3d_p3d,
}
