"""Light FCN-like 3D decode head. Importing this module needs mmseg."""
from typing import Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from torch import Tensor

from .decode_head_3d import BaseDecodeHead3D

__all__ = ['FCNHead3D']

Triple = Tuple[int, int, int]


@MODELS.register_module()
class FCNHead3D(BaseDecodeHead3D):
    """Light FCN-like 3D decode head: conv + upsample stages.

    The decoder used for LIDC-IDRI nodule segmentation with 3D backbones
    (as in ACS convolutions, Yang et al., 2021): on the selected backbone
    feature(s), each stage is one ``ConvModule`` (``kernel_size`` along
    every axis, ``channels`` outputs) followed by a ``upsample_mode``
    upsampling by its scale factor along (D, H, W); ``cls_seg`` then gives
    the logits, which ``loss_by_feat`` / ``predict_by_feat`` resize to the
    labels / the input.

    Args:
        scale_factors (Sequence[int | Sequence[int]]): Upsampling factor of
            each stage, an int for all axes or one per (D, H, W); 1 skips
            the upsampling of that stage. Their number is the number of
            stages. Defaults to ``((2, 2, 2), (2, 2, 2))``.
        kernel_size (int): Kernel size of the stage convolutions.
            Defaults to 3.
        upsample_mode (str): ``'trilinear'`` or ``'nearest'``.
            Defaults to 'trilinear'.
        **kwargs: Arguments of :class:`BaseDecodeHead3D`.

    Examples:
        >>> import torch
        >>> from svd_mm.models.decode_heads import FCNHead3D
        >>> head = FCNHead3D(in_channels=32, channels=8, num_classes=2)
        >>> feats = (torch.rand(1, 32, 2, 3, 4), )
        >>> head(feats).shape
        torch.Size([1, 2, 8, 12, 16])
    """

    def __init__(self,
                 scale_factors: Sequence[Union[int,
                                               Sequence[int]]] = ((2, 2, 2),
                                                                  (2, 2, 2)),
                 kernel_size: int = 3,
                 upsample_mode: str = 'trilinear',
                 **kwargs) -> None:
        if len(scale_factors) == 0:
            raise ValueError('FCNHead3D needs at least one stage, but got '
                             'scale_factors=()')
        self.scale_factors = tuple(
            self._to_triple(s, 'scale_factors') for s in scale_factors)
        if upsample_mode not in ('trilinear', 'nearest'):
            raise ValueError("upsample_mode must be 'trilinear' or "
                             f"'nearest', but got {upsample_mode!r}")
        self.kernel_size = kernel_size
        self.upsample_mode = upsample_mode
        super().__init__(**kwargs)
        if self.input_transform == 'multiple_select':
            raise ValueError(
                "FCNHead3D works on one feature; use input_transform=None or "
                "'resize_concat', not 'multiple_select'")
        self.convs = nn.ModuleList(
            ConvModule(
                self.in_channels if i == 0 else self.channels,
                self.channels,
                kernel_size=kernel_size,
                padding=kernel_size // 2,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for i in range(len(self.scale_factors)))

    @staticmethod
    def _to_triple(value: Union[int, Sequence[int]], name: str) -> Triple:
        if isinstance(value, int):
            value = (value, ) * 3
        value = tuple(value)
        if len(value) != 3 or not all(
                isinstance(v, int) and v >= 1 for v in value):
            raise ValueError(f'each of {name} must be a positive int or '
                             f'three of them (D, H, W), but got {value}')
        return value

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Run the stages.

        Args:
            inputs (Sequence[Tensor]): Multi-level (N, C, D, H, W) features.

        Returns:
            Tensor: (N, channels, D * prod(factors_D), ...) feature.
        """
        x = self._transform_inputs(inputs)
        for conv, scale_factor in zip(self.convs, self.scale_factors):
            x = conv(x)
            if scale_factor != (1, 1, 1):
                x = F.interpolate(
                    x,
                    scale_factor=scale_factor,
                    mode=self.upsample_mode,
                    align_corners=self.align_corners
                    if self.upsample_mode == 'trilinear' else None)
        return x

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Return (N, out_channels, D', H', W') logits."""
        return self.cls_seg(self._forward_feature(inputs))
