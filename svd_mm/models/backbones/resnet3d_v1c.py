"""3D ResNet with a deep stem (V1c variant)."""
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .resnet3d import ResNet3D

__all__ = ['ResNet3DV1c']


@MODELS.register_module()
class ResNet3DV1c(ResNet3D):
    """ResNet3D with the 7x7x7 stem replaced by three 3x3x3 convolutions.

    The V1c variant of `Bag of Tricks <https://arxiv.org/abs/1812.01187>`_
    made 3D: in -> base/2 (stride (stem_slice_stride, stem_stride,
    stem_stride)), base/2 -> base/2, base/2 -> base, each followed by norm
    and activation and stored as ``self.stem``. Everything else, including
    the arguments, is that of :class:`ResNet3D`.

    Example:
        >>> import torch
        >>> from svd_mm.models.backbones import ResNet3DV1c
        >>> self = ResNet3DV1c(depth=18, base_channels=8, with_stem_out=True)
        >>> _ = self.eval()
        >>> for out in self(torch.rand(1, 1, 3, 64, 48)):
        ...     print(tuple(out.shape))
        (1, 8, 3, 32, 24)
        (1, 64, 3, 2, 2)
    """

    stem_name = 'stem'

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        """Build the three 3x3x3 stem convolutions and the max-pool; the
        arguments are those of :meth:`ResNet3D._make_stem_layer`."""
        mid_channels = stem_channels // 2
        strides = ((self.stem_slice_stride, self.stem_stride,
                    self.stem_stride), 1, 1)
        channels = (in_channels, mid_channels, mid_channels, stem_channels)
        self.stem = nn.Sequential(*[
            ConvModule(
                channels[i],
                channels[i + 1],
                kernel_size=3,
                stride=strides[i],
                padding=1,
                bias=False,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for i in range(3)
        ])
        self._make_maxpool_layer()
