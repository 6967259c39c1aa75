"""Pseudo-3D ResNet (P3D) backbone, the efficient alternative of SVD-Net.

`Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks
<https://arxiv.org/abs/1711.10305>`_ (Qiu et al., ICCV 2017) factorises the
3x3x3 convolution of a bottleneck into a 1x3x3 spatial convolution (S) and a
3x1x1 convolution along D (T), combined in three structures that cycle block
by block:

- P3D-A: S then T, in series, ``T(S(x))``;
- P3D-B: S and T in parallel, ``S(x) + T(x)``;
- P3D-C: S then T, plus S's output, ``S(x) + T(S(x))``.

As in the paper, the network names count the weighted layers along the main
path: P3D-63 is ResNet-50 (stage blocks (3, 4, 6, 3)) with a T convolution
in each of the 13 blocks of the first three stages (50 + 13 = 63), and the
last stage made of 2D residual units (only S, no mixing along D); likewise
P3D-131 = ResNet-101 + 30 and P3D-199 = ResNet-152 + 47. The stem is a
single 1x7x7 convolution.

The skeleton, strides, freezing and initialization are those of
:class:`~svd_mm.models.backbones.ResNet3D`, of which :class:`P3D` is a
subclass: with the default strides D never shrinks, so a VDT volume
(N, 1, 3, H, W) keeps ``D == 3`` to the last stage.

``arch='mp3d'`` builds instead the P3D of MP3D (Zhang et al., MICCAI 2020,
urmagicsmine/MP3D ``mmdet/models/backbones/p3d.py``), the network of the
released ``mp3d63-d720bda1.pth``: its tensors are those of the default
P3D-63 with T convolutions in all four stages, so that file loads with
nothing left over (see :mod:`svd_mm.models.utils.official_importers`).
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, Sequential
from mmengine.registry import MODELS

from .resnet3d import Bottleneck3D, ResNet3D

__all__ = ['P3D', 'P3DBottleneck', 'PseudoConv3D', 'SliceMaxPool3D']

STRUCTURES = ('A', 'B', 'C')


class PseudoConv3D(BaseModule):
    """A kxkxk convolution factorised into S (1xkxk) and T (3x1x1).

    Each of ``conv_s`` and ``conv_t`` is a convolution followed by norm and
    activation (a :class:`~mmcv.cnn.ConvModule`); ``structure`` combines
    them as P3D-A ``T(S(x))``, P3D-B ``S(x) + T(x)`` or P3D-C
    ``S(x) + T(S(x))``; None keeps only S (a 2D convolution run on each
    slice). The strides are placed so that every output voxel is centred on
    the input voxel a kxkxk convolution with the same strides would centre
    on:

    - None: S strides along (D, H, W) (along D it just subsamples the
      slices, its kernel being 1 there);
    - 'A' and 'C': S strides along H/W, T along D; in 'C' the S branch
      added to ``T(S(x))`` is subsampled along D (``[:, :, ::slice_stride]``);
    - 'B': both S and T stride along (D, H, W).

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels of S and T.
        kernel_size (int): Size k of S along H and W; T always has size 3
            along D. Defaults to 3.
        structure (str, optional): 'A', 'B', 'C' or None (S only).
            Defaults to 'A'.
        stride (int): Stride along H and W. Defaults to 1.
        slice_stride (int): Stride along D. Defaults to 1.
        dilation (int): Dilation of S along H/W and of T along D; the
            padding is ``dilation * (size // 2)`` on those axes, 0 on the
            others. Defaults to 1.
        conv_cfg (dict): Config of the convolutions.
            Defaults to ``dict(type='Conv3d')``.
        norm_cfg (dict): Config of the norm layers.
            Defaults to ``dict(type='BN3d')``.
        act_cfg (dict): Config of the activations.
            Defaults to ``dict(type='ReLU', inplace=True)``.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.

    Example:
        >>> import torch
        >>> self = PseudoConv3D(4, 8, structure='C', stride=2, slice_stride=2)
        >>> print(tuple(self(torch.rand(1, 4, 9, 16, 12)).shape))
        (1, 8, 5, 8, 6)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 structure: Optional[str] = 'A',
                 stride: int = 1,
                 slice_stride: int = 1,
                 dilation: int = 1,
                 conv_cfg: dict = dict(type='Conv3d'),
                 norm_cfg: dict = dict(type='BN3d'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        if structure is not None and structure not in STRUCTURES:
            raise ValueError(f'structure must be one of {STRUCTURES} or '
                             f'None, got {structure!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.structure = structure
        self.stride = stride
        self.slice_stride = slice_stride

        s_slice_stride = slice_stride if structure in (None, 'B') else 1
        pad = dilation * (kernel_size // 2)
        self.conv_s = ConvModule(
            in_channels,
            out_channels,
            kernel_size=(1, kernel_size, kernel_size),
            stride=(s_slice_stride, stride, stride),
            padding=(0, pad, pad),
            dilation=(1, dilation, dilation),
            bias=False,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if structure is None:
            self.conv_t = None
            return
        t_stride = stride if structure == 'B' else 1
        self.conv_t = ConvModule(
            in_channels if structure == 'B' else out_channels,
            out_channels,
            kernel_size=(3, 1, 1),
            stride=(slice_stride, t_stride, t_stride),
            padding=(dilation, 0, 0),
            dilation=(dilation, 1, 1),
            bias=False,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward (N, C, D, H, W) through S and T."""
        if self.structure == 'B':
            return self.conv_s(x) + self.conv_t(x)
        out = self.conv_s(x)
        if self.structure == 'A':
            return self.conv_t(out)
        if self.structure == 'C':
            return out[:, :, ::self.slice_stride] + self.conv_t(out)
        return out

    def extra_repr(self) -> str:
        return f'structure={self.structure!r}'


class P3DBottleneck(Bottleneck3D):
    """:class:`Bottleneck3D` with its 3x3x3 ``conv2`` made a
    :class:`PseudoConv3D`.

    The 1x1x1 convolutions, the shortcut, checkpointing and ``last_norm``
    are those of :class:`Bottleneck3D`.

    Args:
        inplanes (int): Number of input channels.
        planes (int): Number of channels of the inner convolutions; the
            block outputs ``planes * expansion`` channels.
        structure (str, optional): 'A', 'B', 'C', or None for a 2D
            residual unit (S only). Defaults to 'A'.
        style (str): Where the block strides: ``'pytorch'`` in ``conv2``
            (the S and T convolutions, as described in
            :class:`PseudoConv3D`), ``'caffe'`` in the first 1x1x1
            convolution ``conv1``, as MP3D's P3D does. Defaults to
            'pytorch'.
        **kwargs: The other arguments of :class:`Bottleneck3D`.
    """

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 structure: Optional[str] = 'A',
                 style: str = 'pytorch',
                 **kwargs) -> None:
        if style not in ('pytorch', 'caffe'):
            raise ValueError(
                f"style must be 'pytorch' or 'caffe', got {style!r}")
        # read by _make_conv during Bottleneck3D.__init__
        self.structure = structure
        self.style = style
        self.strided = 0 if style == 'caffe' else 1
        super().__init__(inplanes, planes, **kwargs)

    def _make_conv(self, index: int, in_channels: int, out_channels: int,
                   kernel_size: int, strided: bool, **cfgs) -> nn.Module:
        """``conv2`` is a :class:`PseudoConv3D`, the others are those of
        :class:`Bottleneck3D`."""
        if index != 1:
            return super()._make_conv(index, in_channels, out_channels,
                                      kernel_size, strided, **cfgs)
        return PseudoConv3D(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            structure=self.structure,
            stride=self.stride if strided else 1,
            slice_stride=self.slice_stride if strided else 1,
            dilation=self.dilation,
            **cfgs)


class SliceMaxPool3D(nn.Module):
    """Max-pool along D with kernel 3 and stride 2, centred on the centre
    slice.

    The padding along D is 1, except when ``D % 4 == 3`` where it is 0:
    for odd D, the output slices are then those centred on the input's
    centre slice and every second slice from it, and every input slice is
    read. A fixed padding cannot do this: with stride 2, D=3 -> 1 needs
    ``kernel - 2 * padding`` in {2, 3} but D=5 -> 3 needs it in {0, 1}.
    The depths go 9 -> 5 -> 3 -> 1, 7 -> 3 -> 1, 2 -> 1, 4 -> 2, 1 -> 1;
    H and W are unchanged.

    Example:
        >>> import torch
        >>> x = torch.arange(9.).view(1, 1, 9, 1, 1)
        >>> pool = SliceMaxPool3D()
        >>> for _ in range(3):
        ...     x = pool(x)
        ...     print(x.flatten().tolist())
        [1.0, 3.0, 5.0, 7.0, 8.0]
        [3.0, 7.0, 8.0]
        [8.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool (N, C, D, H, W) to (N, C, D', H, W)."""
        padding = 0 if x.size(2) % 4 == 3 else 1
        return F.max_pool3d(
            x, kernel_size=(3, 1, 1), stride=(2, 1, 1),
            padding=(padding, 0, 0))


class _StructureCycle:
    """Stands for the block class in :meth:`ResNet3D.make_res_layer`: each
    call builds a :class:`P3DBottleneck` with the next structure."""

    expansion = P3DBottleneck.expansion

    def __init__(self,
                 structures: Sequence[Optional[str]],
                 style: str = 'pytorch') -> None:
        self._structures = iter(structures)
        self._style = style

    def __call__(self, **kwargs) -> P3DBottleneck:
        return P3DBottleneck(
            structure=next(self._structures), style=self._style, **kwargs)


def _mp3d_slice_pool(stage: int) -> nn.MaxPool3d:
    """The max-pool along D that MP3D's P3D puts after a stage: kernel 3,
    stride 2 and padding 1 after the first two stages (9 -> 5 -> 3 slices),
    kernel 3, stride 1 and no padding after the third (3 -> 1)."""
    if stage < 2:
        return nn.MaxPool3d((3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
    return nn.MaxPool3d((3, 1, 1), stride=1, padding=0)


@MODELS.register_module()
class P3D(ResNet3D):
    """Pseudo-3D ResNet backbone (P3D-63, -131, -199).

    A :class:`ResNet3D` whose stem is a 1x7x7 convolution (a
    :class:`PseudoConv3D` named ``conv1``) and whose blocks are
    :class:`P3DBottleneck`: in the stages of ``stage_with_slice_conv`` the
    blocks cycle through the structures A, B, C (the i-th such block of the
    network, counted across stages, is ``'ABC'[i % 3]``); in the others
    they are 2D residual units (structure None). The first block of a stage
    strides as described in :class:`PseudoConv3D`.

    The depth D shrinks through ``slice_strides`` (and
    ``stem_slice_stride``, ``maxpool_slice_stride``) as in
    :class:`ResNet3D`, or through ``slice_pool_stages``: a
    :class:`SliceMaxPool3D`, kept as ``layer{i+1}.slice_pool``, ends each
    listed stage, so the output of that stage already has the smaller D.
    For DeepLesion's 9 slices, ``slice_pool_stages=(1, 2, 3)`` gives stage
    depths 9, 5, 3, 1, each centred on the key slice, while
    ``slice_strides=(1, 2, 2, 3)`` gives the same depths by strided
    convolutions.

    ``arch='mp3d'`` is the P3D of MP3D (urmagicsmine/MP3D,
    ``mmdet/models/backbones/p3d.py``), whose COCO weights the authors
    released; it differs from the default ``'p3d'`` in three places, none of
    which changes a tensor shape:

    - the first block of a stage strides in its first 1x1x1 convolution
      (``style='caffe'`` of :class:`P3DBottleneck`), not in S and T;
    - the stem max-pool is 1x3x3 (H/W stride 2, no pooling along D);
    - T convolutions in all four stages (the A, B, C cycle runs over all
      16 blocks of P3D-63) and, by default, max-pools along D after the
      first three stages (kernel 3; stride 2 and padding 1 after stages 1
      and 2, stride 1 and no padding after stage 3), as MP3D pools its
      9 slices 9 -> 5 -> 3 -> 1. Unlike :class:`SliceMaxPool3D` these
      pools do not adapt to the depth: they are MP3D's.

    Args:
        depth (int): Number of layers, from {63, 131, 199}.
        arch (str): ``'p3d'`` (the structure described above) or
            ``'mp3d'`` (MP3D's P3D). Defaults to 'p3d'.
        stage_with_slice_conv (Sequence[bool], optional): Whether each stage
            has T convolutions (P3D-A/B/C blocks) rather than 2D units.
            Defaults to None: all stages but the fourth, as in the paper
            (all four stages for ``arch='mp3d'``).
        stem_with_slice_conv (bool): Whether to follow the 1x7x7 stem
            convolution by a 3x1x1 one (a P3D-A stem, one more layer than
            the name says). Defaults to False.
        slice_pool_stages (Sequence[int], optional): Indices of the stages
            ended by a max-pool along D: a :class:`SliceMaxPool3D` for
            ``arch='p3d'``, MP3D's pool for ``arch='mp3d'``. Defaults to
            None: () for ``'p3d'``, (0, 1, 2) for ``'mp3d'``.
        **kwargs: The other arguments of :class:`ResNet3D`.

    Example:
        >>> import torch
        >>> from svd_mm.models.backbones import P3D
        >>> self = P3D(depth=63, base_channels=8, out_indices=(0, 1, 2, 3))
        >>> _ = self.eval()
        >>> for level_out in self(torch.rand(1, 1, 3, 64, 48)):
        ...     print(tuple(level_out.shape))
        (1, 32, 3, 16, 12)
        (1, 64, 3, 8, 6)
        (1, 128, 3, 4, 3)
        (1, 256, 3, 2, 2)
        >>> self = P3D(depth=63, base_channels=8, slice_pool_stages=(1, 2, 3),
        ...            out_indices=(0, 1, 2, 3))
        >>> _ = self.eval()
        >>> print([out.size(2) for out in self(torch.rand(1, 1, 9, 64, 48))])
        [9, 5, 3, 1]
        >>> self = P3D(depth=63, arch='mp3d', base_channels=8,
        ...            norm_cfg=dict(type='GN', num_groups=4),
        ...            out_indices=(0, 1, 2, 3))
        >>> _ = self.eval()
        >>> print([out.size(2) for out in self(torch.rand(1, 1, 9, 64, 48))])
        [5, 3, 1, 1]
    """

    arch_settings = {
        63: (P3DBottleneck, (3, 4, 6, 3)),
        131: (P3DBottleneck, (3, 4, 23, 3)),
        199: (P3DBottleneck, (3, 8, 36, 3))
    }

    archs = ('p3d', 'mp3d')

    def __init__(self,
                 depth: int,
                 arch: str = 'p3d',
                 stage_with_slice_conv: Optional[Sequence[bool]] = None,
                 stem_with_slice_conv: bool = False,
                 slice_pool_stages: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if arch not in self.archs:
            raise ValueError(
                f'arch must be one of {self.archs}, got {arch!r}')
        num_stages = kwargs.get('num_stages', 4)
        mp3d = arch == 'mp3d'
        if stage_with_slice_conv is None:
            stage_with_slice_conv = tuple(
                mp3d or i < 3 for i in range(num_stages))
        if slice_pool_stages is None:
            slice_pool_stages = tuple(
                i for i in (0, 1, 2) if i < num_stages) if mp3d else ()
        if len(stage_with_slice_conv) != num_stages:
            raise ValueError(
                f'len(stage_with_slice_conv) must equal num_stages='
                f'{num_stages}, got {tuple(stage_with_slice_conv)}')
        slice_pool_stages = tuple(slice_pool_stages)
        if not all(0 <= i < num_stages for i in slice_pool_stages):
            raise ValueError(f'slice_pool_stages must be stage indices in '
                             f'[0, {num_stages - 1}], got {slice_pool_stages}')
        # read by _make_stem_layer and make_res_layer during
        # ResNet3D.__init__, hence set first (as mmdet's ResNeXt does)
        self.stage_with_slice_conv = tuple(
            bool(w) for w in stage_with_slice_conv)
        self.stem_with_slice_conv = stem_with_slice_conv
        self.slice_pool_stages = slice_pool_stages
        self.arch = arch
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        """Build the 1x7x7 (+ 3x1x1) stem and the max-pool (1x3x3 for
        ``arch='mp3d'``); the arguments are those of
        :meth:`ResNet3D._make_stem_layer`."""
        self.conv1 = PseudoConv3D(
            in_channels,
            stem_channels,
            kernel_size=7,
            structure='A' if self.stem_with_slice_conv else None,
            stride=self.stem_stride,
            slice_stride=self.stem_slice_stride,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        if self.arch == 'mp3d' and self.with_maxpool:
            self.maxpool = nn.MaxPool3d(
                kernel_size=(1, 3, 3),
                stride=(self.maxpool_slice_stride, 2, 2),
                padding=(0, 1, 1))
        else:
            self._make_maxpool_layer()

    def make_res_layer(self, block: type, inplanes: int, planes: int,
                       num_blocks: int, **kwargs) -> Sequential:
        """Pack the blocks of the next stage, then its slice pool if any.

        The stage index is the number of stages built so far. The
        arguments are those of :meth:`ResNet3D.make_res_layer`; ``block``
        only gives the expansion, the blocks being :class:`P3DBottleneck`
        with the structures of the A, B, C cycle (or None).

        Returns:
            Sequential: The stage.
        """
        stage = len(self.res_layers)
        if self.stage_with_slice_conv[stage]:
            first = sum(n for n, with_t in zip(self.stage_blocks[:stage],
                                               self.stage_with_slice_conv)
                        if with_t)
            structures = [
                STRUCTURES[(first + i) % len(STRUCTURES)]
                for i in range(num_blocks)
            ]
        else:
            structures = [None] * num_blocks
        style = 'caffe' if self.arch == 'mp3d' else 'pytorch'
        res_layer = super().make_res_layer(
            _StructureCycle(structures, style), inplanes, planes, num_blocks,
            **kwargs)
        if stage in self.slice_pool_stages:
            pool = (_mp3d_slice_pool(stage)
                    if self.arch == 'mp3d' else SliceMaxPool3D())
            res_layer.add_module('slice_pool', pool)
        return res_layer
