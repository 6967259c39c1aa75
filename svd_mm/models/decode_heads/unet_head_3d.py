"""3D U-Net decoder head. Importing this module needs mmseg."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import Sequential
from mmseg.registry import MODELS
from torch import Tensor

from .decode_head_3d import BaseDecodeHead3D

__all__ = ['UNetHead3D']


@MODELS.register_module()
class UNetHead3D(BaseDecodeHead3D):
    """3D U-Net decoder on the multi-level features of a 3D backbone.

    Made for ``ResNet3D(..., with_stem_out=True, out_indices=(0, 1, 2, 3))``
    (the LiTS liver / tumour setting), whose outputs are the stem feature
    followed by the stage features, finest first. Starting from the
    coarsest feature, each level

    1. upsamples the current feature (``upsample_mode``) to the (D, H, W)
       of the next finer skip feature, i.e. by the stride of that stage,
       whatever it is along each axis (x2, or 1 along D, ...),
    2. concatenates it with the skip feature,
    3. applies ``num_convs`` 3x3x3 ``ConvModule`` s.

    The output is at the resolution of the finest input (the stem feature,
    i.e. the full input resolution when ``stem_stride=1`` and
    ``stem_slice_stride=1``), with ``channels`` channels before
    ``cls_seg``.

    Args:
        in_channels (Sequence[int]): Channels of the input features, finest
            (stem) first, e.g. ``(64, 64, 128, 256, 512)`` for ResNet3D-18.
        channels (int): Channels of the finest decoder level, before
            ``conv_seg``.
        dec_channels (Sequence[int], optional): Output channels of the
            decoder level of each skip feature ``i`` (``len(in_channels) -
            1`` values, finest first; the first must equal ``channels``).
            Defaults to None: ``(channels, *in_channels[1:-1])``.
        num_convs (int): Convolutions per decoder level. Defaults to 2.
        upsample_mode (str): ``'trilinear'`` or ``'nearest'``.
            Defaults to 'trilinear'.
        **kwargs: Other arguments of :class:`BaseDecodeHead3D`;
            ``input_transform`` is ``'multiple_select'`` and ``in_index``
            defaults to all inputs, ``tuple(range(len(in_channels)))``.

    Examples:
        >>> import torch
        >>> from svd_mm.models.decode_heads import UNetHead3D
        >>> head = UNetHead3D(
        ...     in_channels=(4, 4, 8, 16), channels=4, num_classes=3)
        >>> feats = (torch.rand(1, 4, 8, 16, 24), torch.rand(1, 4, 8, 16, 24),
        ...          torch.rand(1, 8, 4, 8, 12), torch.rand(1, 16, 2, 4, 6))
        >>> head(feats).shape
        torch.Size([1, 3, 8, 16, 24])
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 dec_channels: Optional[Sequence[int]] = None,
                 num_convs: int = 2,
                 upsample_mode: str = 'trilinear',
                 **kwargs) -> None:
        if not isinstance(in_channels, (list, tuple)) or len(in_channels) < 2:
            raise ValueError('UNetHead3D needs at least two input features '
                             '(a skip and a deeper one), but got '
                             f'in_channels={in_channels!r}')
        in_channels = tuple(in_channels)
        input_transform = kwargs.pop('input_transform', 'multiple_select')
        if input_transform != 'multiple_select':
            raise ValueError("UNetHead3D uses input_transform="
                             f"'multiple_select', got {input_transform!r}")
        in_index = tuple(
            kwargs.pop('in_index', tuple(range(len(in_channels)))))
        if dec_channels is None:
            dec_channels = (channels, ) + in_channels[1:-1]
        dec_channels = tuple(dec_channels)
        if len(dec_channels) != len(in_channels) - 1:
            raise ValueError(
                f'dec_channels needs {len(in_channels) - 1} values (one per '
                f'skip feature), but got {dec_channels}')
        if dec_channels[0] != channels:
            raise ValueError(
                f'dec_channels[0]={dec_channels[0]} is the output of the '
                f'finest level and must equal channels={channels}')
        if num_convs < 1:
            raise ValueError(f'num_convs must be >= 1, got {num_convs}')
        if upsample_mode not in ('trilinear', 'nearest'):
            raise ValueError("upsample_mode must be 'trilinear' or "
                             f"'nearest', but got {upsample_mode!r}")
        self.dec_channels = dec_channels
        self.num_convs = num_convs
        self.upsample_mode = upsample_mode
        super().__init__(
            in_channels,
            channels,
            input_transform='multiple_select',
            in_index=in_index,
            **kwargs)

        # decoder_blocks[i] fuses skip feature i with the level below it
        self.decoder_blocks = nn.ModuleList()
        for i in range(len(in_channels) - 1):
            below = in_channels[-1] if i == len(in_channels) - 2 \
                else dec_channels[i + 1]
            self.decoder_blocks.append(
                Sequential(*(ConvModule(
                    below + in_channels[i] if j == 0 else dec_channels[i],
                    dec_channels[i],
                    kernel_size=3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg) for j in range(num_convs))))

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Decode the features.

        Args:
            inputs (Sequence[Tensor]): Multi-level (N, C_i, D_i, H_i, W_i)
                features, finest first.

        Returns:
            Tensor: (N, channels, D_0, H_0, W_0) feature.
        """
        feats: List[Tensor] = self._transform_inputs(inputs)
        for i, (x, c) in enumerate(zip(feats, self.in_channels)):
            if x.shape[1] != c:
                raise ValueError(
                    f'UNetHead3D input {i} has {x.shape[1]} channels, but '
                    f'in_channels[{i}] = {c}')
        x = feats[-1]
        for i in range(len(feats) - 2, -1, -1):
            skip = feats[i]
            x = self._resize(x, skip.shape[2:], self.upsample_mode)
            x = self.decoder_blocks[i](torch.cat([x, skip], dim=1))
        return x

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Return (N, out_channels, D_0, H_0, W_0) logits."""
        return self.cls_seg(self._forward_feature(inputs))
