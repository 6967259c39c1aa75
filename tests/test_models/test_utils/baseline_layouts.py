"""State dicts laid out like the public checkpoints of SVD-Net's baselines.

Built from the documented key names and shapes (no weights are
downloaded):

- the 'PyTorch ResNet' layout shared by torchvision, kenshohara/
  3D-ResNets-PyTorch (``models/resnet.py``) and Tencent/MedicalNet
  (``models/resnet.py``): ``conv1``, ``bn1``, ``layer{i}.{j}.conv{k}`` /
  ``bn{k}``, ``layer{i}.{j}.downsample.0`` (1x1 conv) / ``.1`` (norm) for
  the shortcut B, nothing for the parameter-free shortcut A;
- MedicalNet's segmentation decoder ``conv_seg`` (ConvTranspose3d(C, 32, 2),
  BN, Conv3d(32, 32, 3, bias=False), BN, Conv3d(32, classes, 1,
  bias=False)); checkpoints ``{'state_dict': {'module.' + key: ...}}``;
- 3D-ResNets: ``r3d18_K_200ep.pth`` = ``{'epoch', 'arch', 'state_dict'
  (no prefix, shortcut B, fc of 700 classes), 'optimizer', 'scheduler'}``;
  the CVPR 2018 ``resnet-18-kinetics.pth`` = ``{'epoch', 'arch',
  'state_dict' ('module.', shortcut A, fc of 400 classes, PyTorch 0.3: no
  BatchNorm counters), 'optimizer'}``;
- MrGiovanni/ModelsGenesis ``pytorch/unet3d.py``: ``down_tr64`` ..
  ``down_tr512``, ``up_tr256`` .. ``up_tr64`` (``ops.{0,1}.conv1`` (3x3x3,
  with bias) / ``bn1``, ``up_conv`` (ConvTranspose3d, 2x2x2)) and
  ``out_tr.final_conv`` (1x1x1); ``Genesis_Chest_CT.pt`` =
  ``{'state_dict': {'module.' + key: ...}, 'optimizer_state_dict': ...}``.

Imported by path from the tests (the test folders are not packages).
"""
import math
from collections import OrderedDict

import torch

BLOCKS = {
    10: ((1, 1, 1, 1), False),
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


class _Filler:
    """Tensors of a shape: random (seeded) or zeros (large layouts)."""

    def __init__(self, fill='randn', seed=0):
        self.fill = fill
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, *shape, positive=False):
        if self.fill == 'zeros':
            return torch.zeros(shape)
        t = torch.randn(shape, generator=self.gen)
        return t.abs() + 0.5 if positive else t


def _norm(sd, prefix, channels, filler, counters=True):
    sd[f'{prefix}.weight'] = filler(channels, positive=True)
    sd[f'{prefix}.bias'] = filler(channels)
    sd[f'{prefix}.running_mean'] = filler(channels)
    sd[f'{prefix}.running_var'] = filler(channels, positive=True)
    if counters:
        sd[f'{prefix}.num_batches_tracked'] = torch.tensor(1000)


def resnet_layout(depth,
                  dims=3,
                  in_channels=3,
                  width=64,
                  stem_kernel=7,
                  shortcut='B',
                  counters=True,
                  fill='randn',
                  seed=0):
    """Backbone tensors of a ResNet in the common PyTorch layout.

    Args:
        depth (int): 10, 18, 34, 50, 101 or 152.
        dims (int): 2 (torchvision) or 3 (3D-ResNets, MedicalNet).
        in_channels (int): Channels of ``conv1``.
        width (int): Channels of the stem (64 in all released models).
        stem_kernel (int | tuple): Kernel of ``conv1``: an int k gives
            (k,) * dims; 3D-ResNets' ``conv1_t_size`` makes it (t, 7, 7).
        shortcut (str): 'A' (no downsample tensors) or 'B'.
        counters (bool): Whether norms have ``num_batches_tracked``.
        fill (str): 'randn' or 'zeros'.
    """
    filler = _Filler(fill, seed)
    counts, bottleneck = BLOCKS[depth]
    expansion = 4 if bottleneck else 1
    stem = (stem_kernel, ) * dims if isinstance(stem_kernel,
                                                int) else stem_kernel
    sd = OrderedDict()
    sd['conv1.weight'] = filler(width, in_channels, *stem)
    _norm(sd, 'bn1', width, filler, counters)
    inplanes = width
    for i, num in enumerate(counts):
        planes = width * 2**i
        for j in range(num):
            pre = f'layer{i + 1}.{j}'
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3),
                         (planes * 4, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for k, (out_ch, in_ch, size) in enumerate(convs, 1):
                sd[f'{pre}.conv{k}.weight'] = filler(out_ch, in_ch,
                                                     *(size, ) * dims)
                _norm(sd, f'{pre}.bn{k}', out_ch, filler, counters)
            needs_shortcut = j == 0 and (i > 0
                                         or inplanes != planes * expansion)
            if needs_shortcut and shortcut == 'B':
                sd[f'{pre}.downsample.0.weight'] = filler(
                    planes * expansion, inplanes,
                    *(1, ) * dims)
                _norm(sd, f'{pre}.downsample.1', planes * expansion, filler,
                      counters)
            inplanes = planes * expansion
    return sd


def _prefixed(sd, prefix):
    return OrderedDict((prefix + k, v) for k, v in sd.items())


def _sgd_state(num_params):
    return dict(
        state={},
        param_groups=[
            dict(
                lr=0.001,
                momentum=0.9,
                dampening=0,
                weight_decay=0.001,
                nesterov=False,
                params=list(range(num_params)))
        ])


def med3d_checkpoint(depth,
                     shortcut=None,
                     width=64,
                     num_seg_classes=2,
                     fill='randn',
                     seed=0):
    """A MedicalNet checkpoint: ``module.`` + backbone + ``conv_seg``."""
    if shortcut is None:  # as released: A for ResNet-18/34, else B
        shortcut = 'A' if depth in (18, 34) else 'B'
    filler = _Filler(fill, seed + 1)
    sd = resnet_layout(
        depth,
        in_channels=1,
        width=width,
        shortcut=shortcut,
        fill=fill,
        seed=seed)
    feat = width * 8 * (4 if BLOCKS[depth][1] else 1)
    sd['conv_seg.0.weight'] = filler(feat, 32, 2, 2, 2)
    sd['conv_seg.0.bias'] = filler(32)
    _norm(sd, 'conv_seg.1', 32, filler)
    sd['conv_seg.3.weight'] = filler(32, 32, 3, 3, 3)
    _norm(sd, 'conv_seg.4', 32, filler)
    sd['conv_seg.6.weight'] = filler(num_seg_classes, 32, 1, 1, 1)
    return dict(state_dict=_prefixed(sd, 'module.'))


def kinetics_checkpoint(depth,
                        version='current',
                        width=64,
                        n_classes=None,
                        conv1_t_size=7,
                        fill='randn',
                        seed=0):
    """A 3D-ResNets-PyTorch checkpoint.

    ``version='current'``: ``r3d{depth}_K_200ep.pth`` (shortcut B, no
    prefix, 700 classes); ``'cvpr2018'``: ``resnet-{depth}-kinetics.pth``
    (shortcut A for 18/34, ``module.``, 400 classes, no counters).
    """
    bottleneck = BLOCKS[depth][1]
    feat = width * 8 * (4 if bottleneck else 1)
    old = version == 'cvpr2018'
    shortcut = 'A' if old and not bottleneck else 'B'
    sd = resnet_layout(
        depth,
        in_channels=3,
        width=width,
        stem_kernel=(conv1_t_size, 7, 7),
        shortcut=shortcut,
        counters=not old,
        fill=fill,
        seed=seed)
    filler = _Filler(fill, seed + 2)
    n_classes = n_classes or (400 if old else 700)
    sd['fc.weight'] = filler(n_classes, feat)
    sd['fc.bias'] = filler(n_classes)
    ckpt = dict(epoch=200, arch=f'resnet-{depth}')
    if old:
        ckpt['state_dict'] = _prefixed(sd, 'module.')
    else:
        ckpt['state_dict'] = sd
        ckpt['scheduler'] = dict(
            factor=0.1,
            min_lrs=[0.0],
            patience=10,
            mode='min',
            threshold=1e-4,
            threshold_mode='rel',
            best=1.25,
            num_bad_epochs=3,
            mode_worse=math.inf,
            eps=1e-8,
            last_epoch=200,
            _last_lr=[0.001])
    ckpt['optimizer'] = _sgd_state(len(sd))
    return ckpt


def genesis_layout(base=32,
                   n_class=1,
                   in_channels=1,
                   act='relu',
                   fill='randn',
                   seed=0):
    """The keys and shapes of Models Genesis' UNet3D (``module.``-free)."""
    filler = _Filler(fill, seed)
    sd = OrderedDict()

    def lu_conv(prefix, in_ch, out_ch):
        # fan-in scaled, so that the activations stay of order 1
        sd[f'{prefix}.conv1.weight'] = filler(out_ch, in_ch, 3, 3,
                                              3) / (27 * in_ch)**0.5
        sd[f'{prefix}.conv1.bias'] = filler(out_ch)
        _norm(sd, f'{prefix}.bn1', out_ch, filler)
        if act == 'prelu':
            sd[f'{prefix}.activation.weight'] = torch.full((out_ch, ), 0.25)

    channels = in_channels
    for level, name in enumerate(
            ('down_tr64', 'down_tr128', 'down_tr256', 'down_tr512')):
        lu_conv(f'{name}.ops.0', channels, base * 2**level)
        lu_conv(f'{name}.ops.1', base * 2**level, base * 2**level * 2)
        channels = base * 2**level * 2
    for level, name in zip((2, 1, 0), ('up_tr256', 'up_tr128', 'up_tr64')):
        # UpTransition(inChans=outChans=channels): ConvTranspose3d and
        # _make_nConv(inChans + outChans // 2, level, double_chnnel=True)
        sd[f'{name}.up_conv.weight'] = filler(channels, channels, 2, 2,
                                              2) / channels**0.5
        sd[f'{name}.up_conv.bias'] = filler(channels)
        out_ch = base * 2**(level + 1)
        lu_conv(f'{name}.ops.0', channels + channels // 2, out_ch)
        lu_conv(f'{name}.ops.1', out_ch, out_ch)
        channels = out_ch
    sd['out_tr.final_conv.weight'] = filler(n_class, channels, 1, 1, 1)
    sd['out_tr.final_conv.bias'] = filler(n_class)
    return sd


def genesis_checkpoint(**kwargs):
    """``Genesis_Chest_CT.pt``: DataParallel state dict + SGD state."""
    sd = genesis_layout(**kwargs)
    return dict(
        state_dict=_prefixed(sd, 'module.'),
        optimizer_state_dict=_sgd_state(
            sum(1 for k in sd
                if 'running' not in k and 'num_batches' not in k)))
