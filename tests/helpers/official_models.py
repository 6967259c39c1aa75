"""The released SVD-Net and MP3D networks, as their code defines them.

Written from reading urmagicsmine/CSPR ``mmcls/models/backbones/
resnet3d.py`` (with its configs) and urmagicsmine/MP3D ``mmdet/models/
backbones/p3d.py`` (with ``configs/deeplesion/p3d.py``); nothing is copied.
Two kinds of helpers, for the tests of
:mod:`svd_mm.models.utils.official_importers`:

- ``*_checkpoint`` build the state dict of a released file (names in the
  order the official modules register them, shapes, seeded random values),
  wrapped as mmcv 1.x saves it;
- ``*_forward`` are plain-PyTorch transcriptions of the official forward
  passes, run on such a state dict (eval mode: BatchNorm with running
  statistics).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    'cspr_resnet3d_state', 'svd_release_checkpoint', 'cspr_resnet3d_forward',
    'mp3d_p3d_state', 'mp3d_release_checkpoint', 'mp3d_p3d_forward',
    'MP3D_DETECTOR_SHAPES'
]

StateDict = Dict[str, torch.Tensor]

# the parts of MP3D's Faster R-CNN besides the backbone (FPN of 256
# channels on 256..2048, RPN with 3 anchors, 2-FC box head of 1024, COCO's
# 80 classes): key -> shape
MP3D_DETECTOR_SHAPES = OrderedDict(
    [(f'neck.lateral_convs.{i}.conv.{p}', (256, c, 1, 1)[:4 if p ==
                                                         'weight' else 1])
     for i, c in enumerate((256, 512, 1024, 2048))
     for p in ('weight', 'bias')] +
    [(f'neck.fpn_convs.{i}.conv.{p}', (256, 256, 3, 3)[:4 if p ==
                                                       'weight' else 1])
     for i in range(4) for p in ('weight', 'bias')] +
    [('rpn_head.rpn_conv.weight', (256, 256, 3, 3)),
     ('rpn_head.rpn_conv.bias', (256, )),
     ('rpn_head.rpn_cls.weight', (3, 256, 1, 1)),
     ('rpn_head.rpn_cls.bias', (3, )),
     ('rpn_head.rpn_reg.weight', (12, 256, 1, 1)),
     ('rpn_head.rpn_reg.bias', (12, )),
     ('roi_head.bbox_head.fc_cls.weight', (81, 1024)),
     ('roi_head.bbox_head.fc_cls.bias', (81, )),
     ('roi_head.bbox_head.fc_reg.weight', (320, 1024)),
     ('roi_head.bbox_head.fc_reg.bias', (320, )),
     ('roi_head.bbox_head.shared_fcs.0.weight', (1024, 256 * 7 * 7)),
     ('roi_head.bbox_head.shared_fcs.0.bias', (1024, )),
     ('roi_head.bbox_head.shared_fcs.1.weight', (1024, 1024)),
     ('roi_head.bbox_head.shared_fcs.1.bias', (1024, ))])


def _norm_entries(name: str, channels: int, norm: str) -> List[tuple]:
    """(key, shape) of an mmcv BN3d / GN layer."""
    keys = [(f'{name}.weight', (channels, )), (f'{name}.bias', (channels, ))]
    if norm == 'BN':
        keys += [(f'{name}.running_mean', (channels, )),
                 (f'{name}.running_var', (channels, )),
                 (f'{name}.num_batches_tracked', ())]
    return keys


def _fill(entries: List[tuple], seed: int) -> 'OrderedDict':
    """Seeded values: convolutions scaled by 1/sqrt(fan-in), norm weights
    around 1, positive running variances, counters 0."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in entries:
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) > 1:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            state[key] = torch.randn(shape, generator=gen) / fan_in**0.5
        elif key.endswith('.weight'):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=gen)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=gen)
    return state


def cspr_resnet3d_state(width: int = 64,
                        norm: str = 'BN',
                        in_channels: int = 1,
                        num_classes: Optional[int] = 1000,
                        seed: int = 0) -> 'OrderedDict':
    """The state dict of CSPR's ``ImageClassifier`` with ``ResNet3D``
    depth 18 (``backbone.*``) and a ``LinearClsHead`` (``head.fc.*``).

    mmcv's ``build_norm_layer`` names the norms ``bn{k}`` (BN3d) or
    ``gn{k}`` (GN); the shortcut is ``downsample.{0: Conv3d, 1: norm}`` in
    the first block of stages 2-4 (stage 1 keeps 64 channels, stride 1).

    Args:
        width (int): Stem channels (64 in the release). Defaults to 64.
        norm (str): 'BN' or 'GN'. Defaults to 'BN'.
        in_channels (int): Input channels. Defaults to 1.
        num_classes (int, optional): Classes of the head; None: no head.
            Defaults to 1000.
        seed (int): Seed of the values. Defaults to 0.

    Returns:
        OrderedDict: Key to tensor.
    """
    n = 'bn' if norm == 'BN' else 'gn'
    entries = [('conv1.weight', (width, in_channels, 7, 7, 7))]
    entries += _norm_entries(f'{n}1', width, norm)
    inplanes = width
    for i in range(4):
        planes = width * 2**i
        for j in range(2):
            block = f'layer{i + 1}.{j}'
            cin = inplanes if j == 0 else planes
            entries.append((f'{block}.conv1.weight', (planes, cin, 3, 3, 3)))
            entries += _norm_entries(f'{block}.{n}1', planes, norm)
            entries.append(
                (f'{block}.conv2.weight', (planes, planes, 3, 3, 3)))
            entries += _norm_entries(f'{block}.{n}2', planes, norm)
            if j == 0 and cin != planes:
                entries.append((f'{block}.downsample.0.weight',
                                (planes, cin, 1, 1, 1)))
                entries += _norm_entries(f'{block}.downsample.1', planes,
                                         norm)
        inplanes = planes
    entries = [(f'backbone.{k}', s) for k, s in entries]
    if num_classes is not None:
        entries += [('head.fc.weight', (num_classes, width * 8)),
                    ('head.fc.bias', (num_classes, ))]
    return _fill(entries, seed)


def svd_release_checkpoint(**kwargs) -> dict:
    """:func:`cspr_resnet3d_state` as mmcv 1.x saves it (``meta`` with the
    config text, versions, classes; SGD momentum state)."""
    state = cspr_resnet3d_state(**kwargs)
    return dict(
        meta=dict(
            mmcls_version='0.9.0',
            config="model = dict(type='ImageClassifier', ...)",
            CLASSES=('tench', 'goldfish'),
            env_info='sys.platform: linux',
            seed=None,
            epoch=100,
            iter=500400,
            mmcv_version='1.2.7',
            time='Mon Mar  1 12:00:00 2021',
            hook_msgs=dict(last_ckpt='work_dirs/epoch_100.pth')),
        state_dict=state,
        optimizer=dict(
            state={0: dict(momentum_buffer=torch.zeros(2))},
            param_groups=[dict(lr=0.1, momentum=0.9, params=[0])]))


def _norm(x: torch.Tensor, state: StateDict, name: str,
          num_groups: int) -> torch.Tensor:
    if f'{name}.running_mean' in state:
        return F.batch_norm(x, state[f'{name}.running_mean'],
                            state[f'{name}.running_var'],
                            state[f'{name}.weight'], state[f'{name}.bias'],
                            False, 0., 1e-5)
    return F.group_norm(x, num_groups, state[f'{name}.weight'],
                        state[f'{name}.bias'], 1e-5)


def cspr_resnet3d_forward(state: StateDict,
                          x: torch.Tensor,
                          num_stages: int = 4,
                          num_groups: int = 32) -> List[torch.Tensor]:
    """CSPR's ResNet3D-18 forward (``depth_stride=False``): 7x7x7 stem with
    stride (1, 2, 2), norm, ReLU, 3x3x3 max-pool with stride (1, 2, 2);
    basic blocks whose first 3x3x3 convolution strides (1, 2, 2) in the
    first block of stages 2-4; the shortcut is a strided 1x1x1 convolution
    and norm where present.

    Args:
        state (dict): Backbone state dict (no ``backbone.``).
        x (torch.Tensor): Input (N, C, D, H, W).
        num_stages (int): Stages to run. Defaults to 4.
        num_groups (int): Groups of a GN checkpoint. Defaults to 32.

    Returns:
        list[torch.Tensor]: The output of each stage.
    """
    n = 'bn' if 'bn1.weight' in state else 'gn'
    out = F.conv3d(x, state['conv1.weight'], stride=(1, 2, 2), padding=3)
    out = F.relu(_norm(out, state, f'{n}1', num_groups))
    out = F.max_pool3d(out, 3, stride=(1, 2, 2), padding=1)
    outs = []
    for i in range(num_stages):
        for j in range(2):
            p = f'layer{i + 1}.{j}'
            stride = (1, 2, 2) if i > 0 and j == 0 else 1
            y = F.conv3d(out, state[f'{p}.conv1.weight'], stride=stride,
                         padding=1)
            y = F.relu(_norm(y, state, f'{p}.{n}1', num_groups))
            y = F.conv3d(y, state[f'{p}.conv2.weight'], padding=1)
            y = _norm(y, state, f'{p}.{n}2', num_groups)
            if f'{p}.downsample.0.weight' in state:
                identity = F.conv3d(out, state[f'{p}.downsample.0.weight'],
                                    stride=stride)
                identity = _norm(identity, state, f'{p}.downsample.1',
                                 num_groups)
            else:
                identity = out
            out = F.relu(y + identity)
        outs.append(out)
    return outs


_P3D_STAGES = {63: (3, 4, 6, 3), 131: (3, 4, 23, 3), 199: (3, 8, 36, 3)}


def mp3d_p3d_state(depth: int = 63,
                   width: int = 64,
                   norm: str = 'GN',
                   in_channels: int = 1,
                   seed: int = 0) -> 'OrderedDict':
    """The state dict of MP3D's ``P3D`` backbone (no ``backbone.``).

    Every block is a 3D bottleneck (MP3D's ``depth_3d`` is the number of
    blocks): ``downsample`` (registered first, in the first block of each
    stage), ``conv1`` 1x1x1, ``conv2`` S 1x3x3, ``conv3`` T 3x1x1,
    ``conv4`` 1x1x1 to 4x the width, each followed by ``norm_{k}``.

    Args:
        depth (int): 63, 131 or 199. Defaults to 63.
        width (int): Stem and first-stage width (64). Defaults to 64.
        norm (str): 'GN' (the release) or 'BN'. Defaults to 'GN'.
        in_channels (int): Input channels (1 for CT). Defaults to 1.
        seed (int): Seed of the values. Defaults to 0.

    Returns:
        OrderedDict: Key to tensor.
    """
    entries = [('conv1_custom.weight', (width, in_channels, 1, 7, 7))]
    entries += _norm_entries('norm1', width, norm)
    inplanes = width
    for i, blocks in enumerate(_P3D_STAGES[depth]):
        planes = width * 2**i
        for j in range(blocks):
            p = f'layer{i + 1}.{j}'
            cin = inplanes if j == 0 else planes * 4
            if j == 0:
                entries.append(
                    (f'{p}.downsample.0.weight', (planes * 4, cin, 1, 1, 1)))
                entries += _norm_entries(f'{p}.downsample.1', planes * 4,
                                         norm)
            for k, shape in enumerate(
                ((planes, cin, 1, 1, 1), (planes, planes, 1, 3, 3),
                 (planes, planes, 3, 1, 1), (planes * 4, planes, 1, 1, 1))):
                entries.append((f'{p}.conv{k + 1}.weight', shape))
                entries += _norm_entries(f'{p}.norm_{k + 1}', shape[0], norm)
        inplanes = planes * 4
    return _fill(entries, seed)


def mp3d_release_checkpoint(width: int = 64,
                            norm: str = 'GN',
                            with_detector: bool = True,
                            seed: int = 0) -> dict:
    """``mp3d63-d720bda1.pth`` as mmcv 1.x saves an mmdet 2.x detector:
    ``backbone.*`` (:func:`mp3d_p3d_state`) and, with ``with_detector``,
    the neck and heads of :data:`MP3D_DETECTOR_SHAPES` (at ``width`` 64;
    scaled down with it)."""
    state = OrderedDict(
        (f'backbone.{k}', v)
        for k, v in mp3d_p3d_state(63, width, norm, seed=seed).items())
    if with_detector:
        scale = width / 64
        entries = []
        for key, shape in MP3D_DETECTOR_SHAPES.items():
            if key.startswith('neck.lateral') and len(shape) == 4:
                shape = (shape[0], int(shape[1] * scale)) + shape[2:]
            entries.append((key, shape))
        state.update(_fill(entries, seed + 1))
    return dict(
        meta=dict(
            mmdet_version='2.25.0',
            config="model = dict(type='FasterRCNN', ...)",
            CLASSES=('person', 'bicycle'),
            epoch=12,
            iter=87960,
            mmcv_version='1.6.0',
            time='Tue Jul  5 12:00:00 2022',
            hook_msgs=dict(last_ckpt='work_dirs/epoch_12.pth'),
            fp16=dict(
                loss_scaler=dict(
                    scale=512.,
                    growth_factor=2.,
                    backoff_factor=.5,
                    growth_interval=2000,
                    _growth_tracker=0))),
        state_dict=state)


def mp3d_p3d_forward(state: StateDict,
                     x: torch.Tensor,
                     blocks: Optional[Tuple[int, ...]] = None,
                     num_groups: int = 32) -> List[torch.Tensor]:
    """MP3D's P3D forward, before the centre-slice crop.

    Stem: 1x7x7 convolution with stride (1, 2, 2), norm, ReLU, 1x3x3
    max-pool with stride (1, 2, 2). Block ``n`` (counted over the network)
    has structure ``'ABC'[n % 3]``: ``conv1`` (strided (1, 2, 2) in the
    first block of stages 2-4, with the shortcut), then S = ReLU(norm_2(
    conv2)) and T = ReLU(norm_3(conv3)) as T(S(y)) (A), S(y) + T(y) (B) or
    S(y) + T(S(y)) (C), then norm_4(conv4) + shortcut and ReLU. A max-pool
    along D (kernel 3, stride 2, padding 1) follows stages 1 and 2, one of
    kernel 3 without padding stage 3.

    Args:
        state (dict): Backbone state dict (no ``backbone.``).
        x (torch.Tensor): Input (N, 1, D, H, W).
        blocks (tuple[int], optional): Blocks per stage to run (e.g.
            ``(3, )``: stem and the A, B, C blocks of stage 1). Defaults to
            None: all of P3D-63.
        num_groups (int): Groups of the GN layers. Defaults to 32.

    Returns:
        list[torch.Tensor]: The (pooled) output of each stage run.
    """
    blocks = blocks or _P3D_STAGES[63]

    def cbr(t, name, norm, **conv):
        t = F.conv3d(t, state[name], **conv)
        return F.relu(_norm(t, state, norm, num_groups))

    out = cbr(x, 'conv1_custom.weight', 'norm1', stride=(1, 2, 2),
              padding=(0, 3, 3))
    out = F.max_pool3d(out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    outs, n = [], 0
    for i, num in enumerate(blocks):
        for j in range(num):
            p = f'layer{i + 1}.{j}'
            stride = (1, 2, 2) if i > 0 and j == 0 else 1
            y = cbr(out, f'{p}.conv1.weight', f'{p}.norm_1', stride=stride)
            s = lambda t: cbr(t, f'{p}.conv2.weight', f'{p}.norm_2',  # noqa
                              padding=(0, 1, 1))
            t = lambda t: cbr(t, f'{p}.conv3.weight', f'{p}.norm_3',  # noqa
                              padding=(1, 0, 0))
            structure = 'ABC'[n % 3]
            if structure == 'A':
                y = t(s(y))
            elif structure == 'B':
                y = s(y) + t(y)
            else:
                y = s(y)
                y = y + t(y)
            y = _norm(F.conv3d(y, state[f'{p}.conv4.weight']), state,
                      f'{p}.norm_4', num_groups)
            if j == 0:
                identity = _norm(
                    F.conv3d(out, state[f'{p}.downsample.0.weight'],
                             stride=stride), state, f'{p}.downsample.1',
                    num_groups)
            else:
                identity = out
            out = F.relu(y + identity)
            n += 1
        if i < 2:
            out = F.max_pool3d(out, (3, 1, 1), stride=(2, 1, 1),
                               padding=(1, 0, 0))
        elif i == 2:
            out = F.max_pool3d(out, (3, 1, 1), stride=1)
        outs.append(out)
    return outs
