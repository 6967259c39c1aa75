"""3D ResNet backbone of SVD-Net.

The skeleton follows mmdet's ``ResNet`` (``arch_settings``,
``_make_stem_layer``, ``make_res_layer``, ``layer{i+1}``, ``_freeze_stages``,
``norm_eval``); every layer is made 3D by config alone
(``conv_cfg=dict(type='Conv3d')``, ``norm_cfg=dict(type='BN3d')``), in the
manner of mmaction2's ``ResNet3d``. The parameter-free shortcut ``'A'`` is
the one of Med3D (Chen et al., 2019) and 3D-ResNets (Hara et al., 2018).

With the default strides no layer strides along the depth axis (D), which is
the pre-training mode of SVD-Net: a natural image turned into a volume of
depth 3 by the Variable Dimension Transform keeps ``D == 3`` in every stage.
Fine-tuning on medical volumes uses the same class with other strides.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.model import BaseModule, Sequential, constant_init, initialize
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['ResNet3D', 'BasicBlock3D', 'Bottleneck3D', 'ZeroPadShortcut3D']

Triple = Tuple[int, int, int]


class ZeroPadShortcut3D(nn.Module):
    """Parameter-free shortcut (type ``'A'``).

    The input is subsampled with the block's stride (the same positions a
    kernel-1 convolution with that stride would read) and zero-padded along
    the channel axis up to ``out_channels``.

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels, not smaller than
            ``in_channels``.
        stride (tuple[int]): Stride along (D, H, W). Defaults to (1, 1, 1).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: Triple = (1, 1, 1)) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                'ZeroPadShortcut3D can only add channels, got in_channels='
                f'{in_channels} > out_channels={out_channels}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample (N, C, D, H, W) and zero-pad C to ``out_channels``."""
        sd, sh, sw = self.stride
        out = x[:, :, ::sd, ::sh, ::sw]
        # F.pad pads from the last axis backwards: (W, H, D, C)
        return F.pad(out, (0, 0, 0, 0, 0, 0, 0,
                           self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'out_channels={self.out_channels}, stride={self.stride}')


class _ResBlock3D(BaseModule):
    """Residual block of convolutions, the base of :class:`BasicBlock3D`
    and :class:`Bottleneck3D`.

    The convolutions are ``conv1``, ``conv2``, ... (built by
    :meth:`_make_conv`, the last one without activation); ``kernels`` gives
    their sizes and ``strided`` the index of the one that strides. The
    block outputs ``relu(convs(x) + downsample(x))``.

    Args:
        inplanes (int): Number of input channels.
        planes (int): Number of channels of the inner convolutions; the
            block outputs ``planes * expansion`` channels.
        stride (int): Stride along H and W of the strided convolution.
            Defaults to 1.
        slice_stride (int): Stride along D of the strided convolution.
            Defaults to 1.
        dilation (int): Dilation of the 3x3x3 convolutions along every
            axis; the padding equals it. Defaults to 1.
        downsample (nn.Module, optional): Shortcut branch; None means the
            identity. Defaults to None.
        conv_cfg (dict): Config of the convolutions.
            Defaults to ``dict(type='Conv3d')``.
        norm_cfg (dict): Config of the norm layers.
            Defaults to ``dict(type='BN3d')``.
        act_cfg (dict): Config of the activations.
            Defaults to ``dict(type='ReLU', inplace=True)``.
        with_cp (bool): Use checkpointing to save memory. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to None.
    """

    expansion = 1
    kernels: Tuple[int, ...] = ()
    strided = 0

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 slice_stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 conv_cfg: dict = dict(type='Conv3d'),
                 norm_cfg: dict = dict(type='BN3d'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.slice_stride = slice_stride
        self.dilation = dilation
        self.with_cp = with_cp
        last = len(self.kernels) - 1
        for i, k in enumerate(self.kernels):
            self.add_module(
                f'conv{i + 1}',
                self._make_conv(
                    i,
                    inplanes if i == 0 else planes,
                    planes * self.expansion if i == last else planes,
                    k,
                    i == self.strided,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=None if i == last else act_cfg))
        self.downsample = downsample
        self.relu = build_activation_layer(act_cfg)

    def _make_conv(self, index: int, in_channels: int, out_channels: int,
                   kernel_size: int, strided: bool, **cfgs) -> nn.Module:
        """Build ``conv{index + 1}``: a ``ConvModule`` with the block's
        strides if ``strided`` and its dilation if ``kernel_size > 1``;
        ``cfgs`` are its ``conv_cfg``, ``norm_cfg`` and ``act_cfg``."""
        return ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            stride=(self.slice_stride, self.stride,
                    self.stride) if strided else 1,
            padding=self.dilation * (kernel_size // 2),
            dilation=self.dilation if kernel_size > 1 else 1,
            bias=False,
            **cfgs)

    @property
    def last_norm(self) -> nn.Module:
        """nn.Module: the norm layer just before the residual sum."""
        return getattr(self, f'conv{len(self.kernels)}').norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward (N, C, D, H, W) through the block."""

        def _inner_forward(x):
            identity = x if self.downsample is None else self.downsample(x)
            out = x
            for i in range(len(self.kernels)):
                out = getattr(self, f'conv{i + 1}')(out)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class BasicBlock3D(_ResBlock3D):
    """Basic residual block with two 3x3x3 convolutions, the first one
    strided. The arguments are those of :class:`_ResBlock3D`."""

    expansion = 1
    kernels = (3, 3)
    strided = 0


class Bottleneck3D(_ResBlock3D):
    """Bottleneck residual block: 1x1x1, 3x3x3 and 1x1x1 convolutions.

    The stride sits on the 3x3x3 convolution (pytorch style). The arguments
    are those of :class:`_ResBlock3D`.
    """

    expansion = 4
    kernels = (1, 3, 1)
    strided = 1


@MODELS.register_module()
class ResNet3D(BaseModule):
    """3D ResNet backbone of SVD-Net.

    All convolutions are full 3D (7x7x7 stem, 3x3x3 in the blocks) and pad
    every axis so that a stride of 1 keeps the size. The strides along D
    (``slice_strides``, ``stem_slice_stride``, ``maxpool_slice_stride``) and
    along H/W (``strides``, ``stem_stride``) are set separately:

    - pre-training (the defaults): no stride along D, so an input
      (N, 1, 3, H, W) made by the Variable Dimension Transform keeps D=3
      to the last stage;
    - fine-tuning, e.g. DeepLesion with D=9 and
      ``slice_strides=(1, 2, 2, 3)``: the stages have depths 9, 5, 3, 1;
    - segmentation: ``stem_stride=1`` and ``with_maxpool=False`` keep the
      full resolution in the stem, and ``with_stem_out=True`` hands its
      feature to a U-Net decoder.

    Args:
        depth (int): Number of layers, from {18, 34, 50, 101, 152}.
        in_channels (int): Number of input channels C of the
            (N, C, D, H, W) input. Defaults to 1.
        base_channels (int): Number of channels of the stem and of the
            first stage's convolutions. Defaults to 64.
        num_stages (int): Number of residual stages, 1 to 4. Defaults to 4.
        strides (Sequence[int]): H/W stride of the first block of each
            stage. Defaults to (1, 2, 2, 2).
        slice_strides (Sequence[int]): D stride of the first block of each
            stage. Defaults to (1, 1, 1, 1).
        dilations (Sequence[int]): Dilation of each stage's 3x3x3
            convolutions along every axis. Defaults to (1, 1, 1, 1).
        stem_stride (int): H/W stride of the stem convolution.
            Defaults to 2.
        stem_slice_stride (int): D stride of the stem convolution.
            Defaults to 1.
        with_maxpool (bool): Whether to max-pool (3x3x3, H/W stride 2) after
            the stem. Defaults to True.
        maxpool_slice_stride (int): D stride of the max-pool. Defaults to 1.
        shortcut_type (str): ``'A'``: parameter-free shortcut, subsampled and
            zero-padded along the channels; ``'B'``: 1x1x1 convolution and
            norm where the shape changes. Defaults to 'B'.
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to (3, ).
        with_stem_out (bool): Whether to put the stem feature (taken before
            the max-pool) first in the output tuple. Defaults to False.
        frozen_stages (int): Stages to freeze (no gradient, norms in eval
            mode): 0 freezes the stem, i freezes the stem and stages 1..i,
            -1 freezes nothing. Defaults to -1.
        conv_cfg (dict): Config of the convolutions.
            Defaults to ``dict(type='Conv3d')``.
        norm_cfg (dict): Config of the norm layers, e.g. ``dict(type='GN',
            num_groups=32)``. Defaults to
            ``dict(type='BN3d', requires_grad=True)``.
        act_cfg (dict): Config of the activations.
            Defaults to ``dict(type='ReLU', inplace=True)``.
        norm_eval (bool): Whether to keep the batch norms in eval mode
            (frozen running statistics) during training. Defaults to False.
        with_cp (bool): Use checkpointing in the blocks to save memory.
            Defaults to False.
        zero_init_residual (bool): Whether to zero the last norm of each
            block so that it starts as the identity. Defaults to True.
        channels_last_stages (int): Number of leading stages that run in the
            ``torch.channels_last_3d`` memory format (weights and
            activations): 0 runs everything in the default layout, ``k``
            runs the stem and stages 1..k channels-last and switches back
            after stage ``k`` (on the CPU, faster on the large, thin early
            maps: see ``benchmarks/backbone_throughput.py``). The returned
            features are always in the default layout; results equal those
            of 0 up to float rounding. Defaults to 0.
        init_cfg (dict or list[dict], optional): Initialization config.
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads
            weights through
            :func:`svd_mm.models.utils.weight_transfer.load_backbone_weights`.
            Defaults to None (Kaiming for convolutions, 1/0 for norms).

    Example:
        >>> import torch
        >>> from svd_mm.models.backbones import ResNet3D
        >>> self = ResNet3D(depth=18, out_indices=(0, 1, 2, 3))
        >>> _ = self.eval()
        >>> inputs = torch.rand(1, 1, 3, 64, 64)
        >>> level_outputs = self.forward(inputs)
        >>> for level_out in level_outputs:
        ...     print(tuple(level_out.shape))
        (1, 64, 3, 16, 16)
        (1, 128, 3, 8, 8)
        (1, 256, 3, 4, 4)
        (1, 512, 3, 2, 2)
    """

    arch_settings = {
        18: (BasicBlock3D, (2, 2, 2, 2)),
        34: (BasicBlock3D, (3, 4, 6, 3)),
        50: (Bottleneck3D, (3, 4, 6, 3)),
        101: (Bottleneck3D, (3, 4, 23, 3)),
        152: (Bottleneck3D, (3, 8, 36, 3))
    }
    # the stem module (without the max-pool), built by _make_stem_layer
    stem_name = 'conv1'

    def __init__(self,
                 depth: int,
                 in_channels: int = 1,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 slice_strides: Sequence[int] = (1, 1, 1, 1),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 stem_stride: int = 2,
                 stem_slice_stride: int = 1,
                 with_maxpool: bool = True,
                 maxpool_slice_stride: int = 1,
                 shortcut_type: str = 'B',
                 out_indices: Sequence[int] = (3, ),
                 with_stem_out: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: dict = dict(type='Conv3d'),
                 norm_cfg: dict = dict(type='BN3d', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 channels_last_stages: int = 0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = self._default_init_cfg()
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for {type(self).__name__}, '
                           f'expected one of {sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be in [1, 4], got {num_stages}')
        for name, value in (('strides', strides),
                            ('slice_strides', slice_strides),
                            ('dilations', dilations)):
            if len(value) != num_stages:
                raise ValueError(
                    f'len({name}) must equal num_stages={num_stages}, got '
                    f'{name}={tuple(value)}')
        out_indices = tuple(out_indices)
        if not out_indices or not all(
                0 <= i < num_stages for i in out_indices):
            raise ValueError('out_indices must be non-empty stage indices in '
                             f'[0, {num_stages - 1}], got {out_indices}')
        if shortcut_type not in ('A', 'B'):
            raise ValueError(
                f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], '
                             f'got {frozen_stages}')
        if not 0 <= channels_last_stages <= num_stages:
            raise ValueError(f'channels_last_stages must be in [0, '
                             f'{num_stages}], got {channels_last_stages}')

        self.depth = depth
        self.in_channels = in_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.slice_strides = tuple(slice_strides)
        self.dilations = tuple(dilations)
        self.stem_stride = stem_stride
        self.stem_slice_stride = stem_slice_stride
        self.with_maxpool = with_maxpool
        self.maxpool_slice_stride = maxpool_slice_stride
        self.shortcut_type = shortcut_type
        self.out_indices = out_indices
        self.with_stem_out = with_stem_out
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.channels_last_stages = channels_last_stages
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]

        self._make_stem_layer(in_channels, base_channels)
        self.inplanes = base_channels

        self.res_layers = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            res_layer = self.make_res_layer(
                block=self.block,
                inplanes=self.inplanes,
                planes=planes,
                num_blocks=num_blocks,
                stride=self.strides[i],
                slice_stride=self.slice_strides[i],
                dilation=self.dilations[i],
                shortcut_type=shortcut_type,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                with_cp=with_cp)
            self.inplanes = planes * self.block.expansion
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, res_layer)
            self.res_layers.append(layer_name)

        self._freeze_stages()
        self._set_memory_format()

        self.feat_dim = self.block.expansion * base_channels * 2**(
            len(self.stage_blocks) - 1)

    @staticmethod
    def _default_init_cfg() -> List[dict]:
        """Kaiming for the convolutions, weight 1 / bias 0 for the norms."""
        return [
            dict(type='Kaiming', layer='Conv3d'),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        """Build the 7x7x7 stem convolution (+ norm + act) and the max-pool.

        Args:
            in_channels (int): Number of input channels.
            stem_channels (int): Number of output channels of the stem.
        """
        self.conv1 = ConvModule(
            in_channels,
            stem_channels,
            kernel_size=7,
            stride=(self.stem_slice_stride, self.stem_stride,
                    self.stem_stride),
            padding=3,
            bias=False,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        self._make_maxpool_layer()

    def _make_maxpool_layer(self) -> None:
        """Build the 3x3x3 max-pool (H/W stride 2) when ``with_maxpool``."""
        if self.with_maxpool:
            self.maxpool = nn.MaxPool3d(
                kernel_size=3,
                stride=(self.maxpool_slice_stride, 2, 2),
                padding=1)
        else:
            self.maxpool = None

    def make_res_layer(self,
                       block: type,
                       inplanes: int,
                       planes: int,
                       num_blocks: int,
                       stride: int = 1,
                       slice_stride: int = 1,
                       dilation: int = 1,
                       shortcut_type: str = 'B',
                       conv_cfg: dict = dict(type='Conv3d'),
                       norm_cfg: dict = dict(type='BN3d'),
                       act_cfg: dict = dict(type='ReLU', inplace=True),
                       with_cp: bool = False) -> Sequential:
        """Pack the blocks of one stage; only the first one strides.

        Args:
            block (type): :class:`BasicBlock3D` or :class:`Bottleneck3D`.
            inplanes (int): Number of input channels of the stage.
            planes (int): Number of channels of the blocks' convolutions.
            num_blocks (int): Number of blocks.
            stride (int): H/W stride of the first block. Defaults to 1.
            slice_stride (int): D stride of the first block. Defaults to 1.
            shortcut_type (str): ``'A'`` or ``'B'``. Defaults to 'B'.
            dilation, conv_cfg, norm_cfg, act_cfg, with_cp: Those of the
                blocks (:class:`_ResBlock3D`), with the same defaults.

        Returns:
            Sequential: The stage.
        """
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or slice_stride != 1 or inplanes != out_planes:
            if shortcut_type == 'A':
                downsample = ZeroPadShortcut3D(
                    inplanes, out_planes,
                    stride=(slice_stride, stride, stride))
            else:
                downsample = ConvModule(
                    inplanes,
                    out_planes,
                    kernel_size=1,
                    stride=(slice_stride, stride, stride),
                    bias=False,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=None)

        cfgs = dict(
            planes=planes,
            dilation=dilation,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            with_cp=with_cp)
        first = block(
            inplanes=inplanes,
            stride=stride,
            slice_stride=slice_stride,
            downsample=downsample,
            **cfgs)
        return Sequential(first, *(block(inplanes=out_planes, **cfgs)
                                   for _ in range(1, num_blocks)))

    def _freeze_stages(self) -> None:
        """Freeze the stem (``frozen_stages >= 0``) and stages 1..i."""
        stem_and_stages = [self.stem_name] + self.res_layers
        for name in stem_and_stages[:self.frozen_stages + 1]:
            m = getattr(self, name)
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def _set_memory_format(self) -> None:
        """Put the weights of the stem and of the first
        ``channels_last_stages`` stages in ``torch.channels_last_3d``."""
        if self.channels_last_stages == 0:
            return
        self.to(memory_format=torch.channels_last_3d)
        for layer_name in self.res_layers[self.channels_last_stages:]:
            getattr(self, layer_name).to(memory_format=torch.contiguous_format)

    @staticmethod
    def _channels_last(x: torch.Tensor) -> torch.Tensor:
        """Copy ``x`` into the ``channels_last_3d`` strides.

        Not ``x.contiguous(memory_format=...)``: with C=1 a contiguous
        tensor counts as channels-last as well and would keep its strides,
        so the convolution would not pick the channels-last kernels.
        """
        return torch.empty_like(
            x, memory_format=torch.channels_last_3d).copy_(x)

    def init_weights(self) -> None:
        """Initialize the weights.

        ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``
        first applies the default initialization and then loads the
        checkpoint with
        :func:`svd_mm.models.utils.weight_transfer.load_backbone_weights`
        (3D transfer). Otherwise ``init_cfg`` is applied
        (Kaiming / constant by default), followed by the zero
        initialization of each block's last norm if ``zero_init_residual``.
        """
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            # imported here: the transfer code depends on the backbones
            from svd_mm.models.utils.weight_transfer import \
                load_backbone_weights
            initialize(self, self._default_init_cfg())
            self._zero_init_last_norms()
            load_backbone_weights(
                self,
                init_cfg['checkpoint'],
                prefix=init_cfg.get('prefix'),
                map_location=init_cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        super().init_weights()
        self._zero_init_last_norms()

    def _zero_init_last_norms(self) -> None:
        """Zero the last norm of each block when ``zero_init_residual``."""
        if not self.zero_init_residual:
            return
        for m in self.modules():
            if isinstance(m, _ResBlock3D):
                constant_init(m.last_norm, 0)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Forward function.

        Args:
            x (torch.Tensor): Input of shape (N, C, D, H, W) with
                ``C == in_channels``.

        Returns:
            tuple[torch.Tensor]: The stem feature (before the max-pool) if
            ``with_stem_out``, followed by the outputs of the stages in
            ``out_indices``, each of shape (N, C_i, D_i, H_i, W_i).
        """
        if x.dim() != 5:
            raise ValueError(
                f'{type(self).__name__} expects a 5D input of shape '
                f'(N, C, D, H, W), got shape {tuple(x.shape)}; turn images '
                'into volumes first (e.g. with RGBToVolume)')
        if x.size(1) != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} was built with in_channels='
                f'{self.in_channels} but got an input (N, C, D, H, W) of '
                f'shape {tuple(x.shape)} with C={x.size(1)}')
        if self.channels_last_stages > 0:
            x = self._channels_last(x)
        x = getattr(self, self.stem_name)(x)
        outs = [x.contiguous()] if self.with_stem_out else []
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i, layer_name in enumerate(self.res_layers):
            res_layer = getattr(self, layer_name)
            if i < self.channels_last_stages:
                # a no-op unless a kernel handed back the default layout
                # (e.g. oneDNN's 1x1x1 path on one thread)
                x = x.contiguous(memory_format=torch.channels_last_3d)
            x = res_layer(x)
            if i + 1 == self.channels_last_stages:
                x = x.contiguous()
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)

    def train(self, mode: bool = True) -> 'ResNet3D':
        """Set train mode while keeping frozen stages (and, with
        ``norm_eval``, all batch norms) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                # eval() only affects batch norms
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
