"""ACS convolution: 2D kernels applied to a volume in three views.

ACS convolutions (Yang et al., "Reinventing 2D Convolutions for 3D Images",
IEEE JBHI 2021) keep the weights of a 2D CNN, (O, I, k, k), and split the
output channels into three groups: the first group convolves the axial
(H, W) planes, the second the coronal (D, W) planes and the third the
sagittal (D, H) planes of an (N, C, D, H, W) volume. Each group is a 3D
convolution whose kernel is the 2D kernel unsqueezed along the axis it does
not see, so a 2D pre-trained network (e.g. an ImageNet ResNet) becomes a 3D
network without new parameters.

``conv_cfg=dict(type='ACSConv')`` makes any mmcv ``ConvModule`` (e.g. in
:class:`~svd_mm.models.backbones.ResNet3D`) an ACS convolution.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.utils import _triple

__all__ = ['ACSConv3d']

IntOrTriple = Union[int, Sequence[int]]

# the axis of an (N, C, D, H, W) tensor that each view does not convolve:
# axial (H, W planes) -> D, coronal (D, W planes) -> H, sagittal -> W
_VIEW_AXES = (2, 3, 4)


@MODELS.register_module(name=['ACSConv', 'ACSConv3d'])
class ACSConv3d(_ConvNd):
    """ACS convolution of an (N, C, D, H, W) volume with 2D weights.

    The parameter ``weight`` has the 2D shape
    (out_channels, in_channels, k, k). Its output channels are split into
    ``acs_split = (a, c, s)`` (the thirds of ``out_channels``, the first
    ones one larger when it is not a multiple of 3, as in the ACS paper):

    - channels ``[0, a)``: axial view, kernel (1, k, k) over (D, H, W);
    - channels ``[a, a + c)``: coronal view, kernel (k, 1, k);
    - channels ``[a + c, a + c + s)``: sagittal view, kernel (k, k, 1).

    Each view equals a 3D convolution with a (k, k, k) kernel that is zero
    except its central plane, which holds the 2D kernel: the output has the
    shape of ``nn.Conv3d(in_channels, out_channels, k, stride, padding,
    dilation)``, so ACS convolutions replace ``Conv3d`` layers one to one.
    Along the axis a view does not see, the input is read at the position of
    the central tap (it is zero-padded by ``padding - dilation * (k // 2)``
    there, or cropped if that is negative).

    Args:
        in_channels (int): Number of input channels C.
        out_channels (int): Number of output channels.
        kernel_size (int | Sequence[int]): The odd kernel size k; a tuple
            must repeat one value, e.g. (3, 3, 3) or (3, 3).
        stride (int | Sequence[int]): Stride along (D, H, W). Defaults to 1.
        padding (int | Sequence[int]): Zero padding along (D, H, W).
            Defaults to 0.
        dilation (int | Sequence[int]): Dilation along (D, H, W).
            Defaults to 1.
        groups (int): Only 1 is supported. Defaults to 1.
        bias (bool): Whether to add a learnable bias. Defaults to True.
        padding_mode (str): Only ``'zeros'`` is supported.
            Defaults to 'zeros'.
        acs_split (Sequence[int], optional): Output channels of the axial,
            coronal and sagittal views, summing to ``out_channels``.
            Defaults to None (thirds).

    Example:
        >>> import torch
        >>> conv = ACSConv3d(2, 6, kernel_size=3, padding=1, stride=(1, 2, 2))
        >>> tuple(conv.weight.shape)
        (6, 2, 3, 3)
        >>> tuple(conv(torch.rand(1, 2, 5, 8, 6)).shape)
        (1, 6, 5, 4, 3)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrTriple,
                 stride: IntOrTriple = 1,
                 padding: IntOrTriple = 0,
                 dilation: IntOrTriple = 1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 acs_split: Optional[Sequence[int]] = None,
                 device=None,
                 dtype=None) -> None:
        k = self._check_kernel_size(kernel_size)
        if isinstance(padding, str):
            raise ValueError(
                f'ACSConv3d needs numeric padding, got padding={padding!r}')
        if groups != 1:
            raise ValueError(f'ACSConv3d supports groups=1 only, got groups='
                             f'{groups}')
        if padding_mode != 'zeros':
            raise ValueError("ACSConv3d supports padding_mode='zeros' only, "
                             f'got {padding_mode!r}')
        # a 2D (k, k) weight, 3D strides, padding and dilation
        super().__init__(in_channels, out_channels, (k, k), _triple(stride),
                         _triple(padding), _triple(dilation), False,
                         (0, 0, 0), groups, bias, padding_mode,
                         device=device, dtype=dtype)
        if acs_split is None:
            acs_split = [
                out_channels // 3 + (1 if i < out_channels % 3 else 0)
                for i in range(3)
            ]
        acs_split = tuple(int(s) for s in acs_split)
        if (len(acs_split) != 3 or min(acs_split) < 0
                or sum(acs_split) != out_channels):
            raise ValueError(
                'acs_split must be three non-negative numbers of channels '
                f'(axial, coronal, sagittal) summing to out_channels='
                f'{out_channels}, got {acs_split}')
        self.acs_split = acs_split

    @staticmethod
    def _check_kernel_size(kernel_size: IntOrTriple) -> int:
        """The single odd kernel size k of ``kernel_size``."""
        sizes = (kernel_size, ) if isinstance(kernel_size,
                                              int) else tuple(kernel_size)
        if (not sizes or len(set(sizes)) != 1 or not isinstance(sizes[0], int)
                or sizes[0] < 1 or sizes[0] % 2 == 0):
            raise ValueError(
                'ACSConv3d needs one odd kernel size for all axes (the 2D '
                f'kernel is k x k and has a central tap), got kernel_size='
                f'{kernel_size}')
        return sizes[0]

    def view_weights(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The 3D kernels of the three views.

        Returns:
            tuple[Tensor]: The axial (a, I, 1, k, k), coronal (c, I, k, 1, k)
            and sagittal (s, I, k, k, 1) kernels.
        """
        a, c, _ = self.acs_split
        parts = (self.weight[:a], self.weight[a:a + c], self.weight[a + c:])
        return tuple(
            part.unsqueeze(axis) for part, axis in zip(parts, _VIEW_AXES))

    def _view_forward(self, x: torch.Tensor, weight: torch.Tensor,
                      axis: int) -> torch.Tensor:
        """Convolve ``x`` with a kernel of size 1 along ``axis``."""
        k = self.kernel_size[0]
        i = axis - 2
        # padding that puts the single tap where the central tap of a
        # (k, k, k) kernel reads
        pad = self.padding[i] - self.dilation[i] * (k // 2)
        if pad < 0:
            length = x.size(axis)
            if length + 2 * pad < 1:
                raise ValueError(
                    f'ACSConv3d input of shape {tuple(x.shape)} is too '
                    f'small along axis {axis} for kernel_size={k}, '
                    f'padding={self.padding} and dilation={self.dilation}')
            x = x.narrow(axis, -pad, length + 2 * pad)
            pad = 0
        padding = list(self.padding)
        padding[i] = pad
        return F.conv3d(x, weight, None, self.stride, tuple(padding),
                        self.dilation, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve an (N, C, D, H, W) volume.

        Args:
            x (torch.Tensor): Input of shape (N, in_channels, D, H, W).

        Returns:
            torch.Tensor: Output of shape (N, out_channels, D', H', W'),
            the shape of the equivalent ``nn.Conv3d``.
        """
        if x.dim() != 5 or x.size(1) != self.in_channels:
            raise ValueError(
                f'ACSConv3d expects an input of shape (N, {self.in_channels}'
                f', D, H, W), got {tuple(x.shape)}')
        outs = [
            self._view_forward(x, weight, axis)
            for weight, axis in zip(self.view_weights(), _VIEW_AXES)
            if weight.size(0) > 0
        ]
        out = torch.cat(outs, dim=1)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1)
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + f', acs_split={self.acs_split}'
