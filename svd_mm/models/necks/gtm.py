"""Group Transform Module (GTM) of SVD-Net.

The GTM turns the 3D feature pyramid of a 3D backbone into the 2D pyramid
that 2D detection necks and heads expect (e.g. mmdet's ``FPN``): every level
(N, C, D, H, W) is collapsed along D into (N, C, H, W).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from mmengine.registry import MODELS

__all__ = ['GTMNeck']


@MODELS.register_module()
class GTMNeck(BaseModule):
    """Group Transform Module: 3D feature levels to 2D ones.

    Each level (N, C, D, H, W) becomes (N, C, H, W), in one of three modes:

    - ``'group_conv'`` (SVD-Net's GTM): the level is viewed as
      (N, C * D, H, W), channel-major, and fused by a 2D convolution with
      kernel 1x1 and C groups, so that output channel c is a learned
      weighting of the D slices of input channel c only (D weights and a
      bias per channel when ``norm_cfg`` is None). A level of depth 1 still
      gets its 1-slice grouped convolution, i.e. a learned per-channel scale
      (and bias), so the weights exist for every level;
    - ``'conv3d'``: a 3D convolution with kernel (D, 1, 1) and no groups
      (C * C * D weights), whose output (N, C, 1, H, W) is squeezed;
    - ``'center_slice'``: the slice ``x[:, :, D // 2]`` (the upper of the
      two middle slices for an even D); no parameters, and ``norm_cfg`` and
      ``act_cfg`` are not used.

    In the first two modes the norm layer (if any) and the activation (if
    any) follow the convolution and see the (N, C, H, W) result, so the
    same ``norm_cfg`` (e.g. ``dict(type='GN', num_groups=32)`` as in
    SVD-Net's detectors) serves both.

    Args:
        in_channels (Sequence[int]): Number of channels C of each level.
        depths (Sequence[int]): Depth D of each level, e.g. [3, 3, 3, 3] for
            pre-training-mode backbones or [9, 5, 3, 1] for DeepLesion; an
            input level of another depth is an error.
        mode (str): 'group_conv', 'conv3d' or 'center_slice'.
            Defaults to 'group_conv'.
        norm_cfg (dict, optional): Config of the norm layer after each
            convolution. Defaults to None (no norm; the convolutions then
            have a bias).
        act_cfg (dict, optional): Config of the activation after each
            convolution (and norm). Defaults to ``dict(type='ReLU')``.
        init_cfg (dict or list[dict], optional): Initialization config.
            Defaults to Kaiming with ``mode='fan_in'`` for the convolutions
            (with C groups, the fan-in of a 'group_conv' weight is D).

    Example:
        >>> import torch
        >>> self = GTMNeck(in_channels=[4, 8, 16, 32], depths=[9, 5, 3, 1])
        >>> inputs = [
        ...     torch.rand(1, c, d, s, s) for c, d, s in zip(
        ...         [4, 8, 16, 32], [9, 5, 3, 1], [32, 16, 8, 4])
        ... ]
        >>> for out in self(inputs):
        ...     print(tuple(out.shape))
        (1, 4, 32, 32)
        (1, 8, 16, 16)
        (1, 16, 8, 8)
        (1, 32, 4, 4)
    """

    modes = ('group_conv', 'conv3d', 'center_slice')

    def __init__(
        self,
        in_channels: Sequence[int],
        depths: Sequence[int],
        mode: str = 'group_conv',
        norm_cfg: Optional[dict] = None,
        act_cfg: Optional[dict] = dict(type='ReLU'),
        init_cfg: Optional[Union[dict, List[dict]]] = dict(
            type='Kaiming', layer=['Conv2d', 'Conv3d'], mode='fan_in')
    ) -> None:
        super().__init__(init_cfg)
        if mode not in self.modes:
            raise ValueError(
                f'mode must be one of {self.modes}, got {mode!r}')
        in_channels = [int(c) for c in in_channels]
        depths = [int(d) for d in depths]
        if len(in_channels) != len(depths):
            raise ValueError(
                'in_channels and depths must have one entry per level, got '
                f'in_channels={in_channels} and depths={depths}')
        if not in_channels or min(in_channels) < 1 or min(depths) < 1:
            raise ValueError(
                'in_channels and depths must be non-empty lists of positive '
                f'ints, got in_channels={in_channels} and depths={depths}')
        self.in_channels = in_channels
        self.depths = depths
        self.mode = mode
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        # one 2D map per input channel
        self.out_channels = list(in_channels)

        self.convs = nn.ModuleList()
        self.norms = None
        self.activate = None
        if mode == 'center_slice':
            return
        with_bias = norm_cfg is None
        for c, d in zip(in_channels, depths):
            # group_conv: (N, C * D, H, W) -> (N, C, H, W), C groups
            self.convs.append(
                build_conv_layer(
                    dict(type='Conv2d'), c * d, c, 1, groups=c, bias=with_bias)
                if mode == 'group_conv' else build_conv_layer(
                    dict(type='Conv3d'), c, c, (d, 1, 1), bias=with_bias))
        if norm_cfg is not None:
            self.norms = nn.ModuleList(
                build_norm_layer(norm_cfg, channels)[1]
                for channels in in_channels)
        if act_cfg is not None:
            self.activate = build_activation_layer(act_cfg)

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.in_channels)

    def _check_level(self, level: int, x: torch.Tensor) -> None:
        """Raise a ValueError naming the level if ``x`` does not fit it."""
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else x
            raise ValueError(
                f'{type(self).__name__} level {level} expects a 5D tensor of '
                f'shape (N, C, D, H, W), got {shape}')
        if x.size(1) != self.in_channels[level]:
            raise ValueError(
                f'{type(self).__name__} level {level} was configured with '
                f'in_channels={self.in_channels[level]} but got C={x.size(1)}'
                f' (input shape {tuple(x.shape)})')
        if x.size(2) != self.depths[level]:
            raise ValueError(
                f'{type(self).__name__} level {level} was configured with '
                f'depth D={self.depths[level]} but got D={x.size(2)} (input '
                f'shape {tuple(x.shape)}); set depths to the backbone output '
                'depths')

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """Forward function.

        Args:
            inputs (Sequence[torch.Tensor]): One tensor (N, C_i, D_i, H_i,
                W_i) per level, e.g. a 3D backbone's outputs.

        Returns:
            tuple[torch.Tensor]: One tensor (N, C_i, H_i, W_i) per level.
        """
        if isinstance(inputs, torch.Tensor) or len(inputs) != self.num_levels:
            got = (f'a tensor of shape {tuple(inputs.shape)}' if isinstance(
                inputs, torch.Tensor) else f'{len(inputs)} levels')
            raise ValueError(
                f'{type(self).__name__} expects a sequence of '
                f'{self.num_levels} tensors (N, C, D, H, W), got {got}')
        outs = []
        for level, x in enumerate(inputs):
            self._check_level(level, x)
            outs.append(self._transform(level, x))
        return tuple(outs)

    def _transform(self, level: int, x: torch.Tensor) -> torch.Tensor:
        """Collapse one level (N, C, D, H, W) to (N, C, H, W)."""
        n, c, d, h, w = x.shape
        if self.mode == 'center_slice':
            return x[:, :, d // 2]
        if self.mode == 'group_conv':
            # channel-major: the D slices of channel c are group c's inputs
            out = self.convs[level](x.reshape(n, c * d, h, w))
        else:
            out = self.convs[level](x).squeeze(2)
        if self.norms is not None:
            out = self.norms[level](out)
        if self.activate is not None:
            out = self.activate(out)
        return out
