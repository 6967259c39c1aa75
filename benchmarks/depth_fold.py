"""Fold the depth axis of 3D convolutions into channels.

A 3D convolution over a volume (N, C, D, H, W) with a small, fixed depth D
(D=3 for images turned into volumes by the Variable Dimension Transform)
equals one 2D convolution over the folded tensor (N, C * D, H, W) whose
weight (O * D', C * D, kh, kw) is block-banded: the block of output slice
``d`` and input slice ``j`` holds the depth tap
``kd = (j - d * stride_d + padding_d) / dilation_d`` of the 3D weight, and
zeros where no tap reads ``j``. The fold of a contiguous (N, C, D, H, W)
tensor is a free view, so everything around the convolutions (norms,
activations, pooling, shortcuts) stays 3D and unchanged. A
``channels_last_3d`` input is folded through a copy and the output is
returned in ``channels_last_3d``, as ``nn.Conv3d`` would.

Whether the 2D form is faster depends on the layer: the folded convolution
multiplies all ``D * D'`` blocks, zeros included, where a 3D kernel may
skip the padded taps, and 2D kernels are tuned differently from 3D ones.
On a 2-core CPU (oneDNN, ``benchmarks/README.md``) it wins only for the
one-channel 7x7x7 stem of ResNet3D in the contiguous layout (its weight
gradient twice as fast, 2-6 % of a ResNet3D-18 training step at D=3) and
loses 1.3x to 3.9x on the 3x3x3 block convolutions, hence the default
selection of :func:`fold_depth`. In ``channels_last_3d`` oneDNN's 3D stem
is faster than the fold.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['DepthFoldedConv3d', 'fold_depth', 'is_depth_foldable']


def is_depth_foldable(conv: nn.Module) -> bool:
    """Whether ``conv`` can run as a depth-folded 2D convolution.

    Args:
        conv (nn.Module): The module to check.

    Returns:
        bool: True for an ``nn.Conv3d`` with ``groups=1``, zero padding
        given as numbers (not ``'same'``/``'valid'``) and ``padding_mode``
        ``'zeros'``.
    """
    return (isinstance(conv, nn.Conv3d)
            and not isinstance(conv, DepthFoldedConv3d) and conv.groups == 1
            and not isinstance(conv.padding, str)
            and conv.padding_mode == 'zeros')


class DepthFoldedConv3d(nn.Conv3d):
    """A ``Conv3d`` computed as one 2D convolution with depth folded into
    channels.

    It holds the very parameters of the convolution it is made from (same
    ``nn.Parameter`` objects, same names), so state dicts, optimizers and
    gradients are those of the original module; the banded 2D weight is
    rebuilt from them at each call (differentiably). The input depth D is
    read at run time, so any D works; the gain is meant for small D.

    Args:
        conv (nn.Conv3d): The convolution to fold; see
            :func:`is_depth_foldable`.

    Example:
        >>> import torch
        >>> import torch.nn as nn
        >>> conv = nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1)
        >>> folded = DepthFoldedConv3d(conv)
        >>> x = torch.rand(1, 2, 3, 8, 6)
        >>> print(tuple(folded(x).shape))
        (1, 4, 3, 4, 3)
        >>> torch.allclose(folded(x), conv(x), atol=1e-5)
        True
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        if not is_depth_foldable(conv):
            raise TypeError(
                'DepthFoldedConv3d needs an nn.Conv3d with groups=1, numeric '
                f"padding and padding_mode='zeros', got {conv!r}")
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=1,
            bias=conv.bias is not None,
            device='meta')
        # share, not copy: training the folded module trains ``conv``
        self.weight = conv.weight
        self.bias = conv.bias
        self._tap_index: Dict[Tuple[int, torch.device], torch.Tensor] = {}

    def out_depth(self, depth: int) -> int:
        """Output depth D' of an input of depth ``depth``."""
        k, s, p, dil = (self.kernel_size[0], self.stride[0], self.padding[0],
                        self.dilation[0])
        return (depth + 2 * p - dil * (k - 1) - 1) // s + 1

    def _get_tap_index(self, depth: int, device: torch.device) -> torch.Tensor:
        """(D', D) index of the depth tap linking output slice d' to input
        slice j; ``kernel_size[0]`` (an appended zero tap) where none."""
        key = (depth, device)
        if key not in self._tap_index:
            k, s, p, dil = (self.kernel_size[0], self.stride[0],
                            self.padding[0], self.dilation[0])
            d_out = self.out_depth(depth)
            index = torch.full((d_out, depth), k, dtype=torch.long)
            for d in range(d_out):
                for kd in range(k):
                    j = d * s - p + kd * dil
                    if 0 <= j < depth:
                        index[d, j] = kd
            self._tap_index[key] = index.to(device)
        return self._tap_index[key]

    def folded_weight(self, depth: int) -> torch.Tensor:
        """The block-banded 2D weight for an input of depth ``depth``.

        Args:
            depth (int): Input depth D.

        Returns:
            torch.Tensor: Weight of shape (O * D', C * D, kh, kw), rows
            ordered (o, d') and columns (c, j) so that it acts on the view
            (N, C * D, H, W) of a contiguous (N, C, D, H, W) tensor.
        """
        index = self._get_tap_index(depth, self.weight.device)
        d_out = index.size(0)
        out_c, in_c, _, kh, kw = self.weight.shape
        padded = F.pad(self.weight, (0, 0, 0, 0, 0, 1))  # zero tap at k
        # (O, C, D', D, kh, kw) -> (O, D', C, D, kh, kw)
        banded = padded[:, :, index].permute(0, 2, 1, 3, 4, 5)
        return banded.reshape(out_c * d_out, in_c * depth, kh, kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve (N, C, D, H, W) into (N, O, D', H', W')."""
        if x.dim() != 5:
            raise ValueError(f'{type(self).__name__} expects an input of '
                             f'shape (N, C, D, H, W), got {tuple(x.shape)}')
        n, c, d, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} has in_channels={self.in_channels} '
                f'but got an input of shape {tuple(x.shape)}')
        d_out = self.out_depth(d)
        bias = None
        if self.bias is not None:
            bias = self.bias.repeat_interleave(d_out)
        out = F.conv2d(
            x.contiguous().view(n, c * d, h, w),
            self.folded_weight(d),
            bias,
            stride=self.stride[1:],
            padding=self.padding[1:],
            dilation=self.dilation[1:])
        out = out.view(n, self.out_channels, d_out, *out.shape[-2:])
        if _is_channels_last_3d(x):
            # keep the layout a Conv3d would return
            out = out.contiguous(memory_format=torch.channels_last_3d)
        return out


def _is_channels_last_3d(x: torch.Tensor) -> bool:
    """Whether (N, C, D, H, W) ``x`` is laid out as (N, D, H, W, C),
    including the C=1 case where both layouts hold."""
    return (x.is_contiguous(memory_format=torch.channels_last_3d)
            and (not x.is_contiguous() or x.stride(1) < x.stride(2)))


def fold_depth(
        model: nn.Module,
        select: Optional[Callable[[str, nn.Conv3d],
                                  bool]] = None) -> nn.Module:
    """Replace the ``nn.Conv3d`` modules of ``model`` by
    :class:`DepthFoldedConv3d`, in place.

    The parameters are shared with the replaced convolutions, so the state
    dict keys and values, an optimizer built before or after the call, and
    the training updates are the same as for the plain model.

    Args:
        model (nn.Module): The model; an ``nn.Conv3d`` itself is returned
            folded.
        select (callable, optional): ``select(name, conv) -> bool`` picks
            the convolutions to fold among the foldable ones. Defaults to
            None, which folds those with ``in_channels == 1`` (the stem of
            a network fed with one-channel volumes, where the 2D form skips
            the padded depth taps and wins on CPU in the contiguous
            layout).

    Returns:
        nn.Module: ``model`` with the selected convolutions folded.
    """
    if select is None:
        select = _default_select
    if is_depth_foldable(model):
        return DepthFoldedConv3d(model) if select('', model) else model
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full_name = f'{name}.{child_name}' if name else child_name
            if is_depth_foldable(child) and select(full_name, child):
                setattr(module, child_name, DepthFoldedConv3d(child))
    return model


def _default_select(name: str, conv: nn.Conv3d) -> bool:
    """Fold the convolutions reading one input channel."""
    return conv.in_channels == 1
