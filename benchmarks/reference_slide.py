"""svd_mm's former own 3D sliding-window inference, kept as a benchmark
reference.

This is ``EncoderDecoder3D.slide_inference`` (with its helpers
``window_starts``, ``gaussian_weight``, ``_axis_gaussians`` and
``_axis_weight_sums``) as it was before commit 370ed86, which made it
delegate to :func:`monai.inferers.sliding_window_inference`; the code is
that of 370ed86's parent, turned from methods into functions that take the
network call, the number of classes and the ``test_cfg`` values as
arguments. No config and no part of ``svd_mm`` uses it: it lives beside
``benchmarks/sliding_window.py``, which times it against the current
MONAI-based path and MONAI's direct call.

How it works: the window origins along each axis are ``0, stride,
2 * stride, ...`` and one aligned to the end of the axis; a volume smaller
than the window is padded at the end with ``pad_value`` (and cut again).
``batch_windows`` windows (of all the volumes of the batch) go through the
network at once and are added in place into one (N, K, D, H, W) buffer,
weighted (``'gaussian'``) or not (``'constant'``). No full-size weight map
is kept: the windows form a grid and a window's weights are a product of
per-axis factors, so the sum of the weights at a voxel is the product of
three per-axis sums and the buffer is divided by them in place (a full-size
sum is kept only for a Gaussian whose corners underflow).
"""
import itertools
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['window_starts', 'gaussian_weight', 'slide_inference']

Triple = Tuple[int, int, int]


def window_starts(size: int, crop: int, stride: int) -> List[int]:
    """Origins of the windows along one axis.

    Args:
        size (int): Length of the axis (at least ``crop``, or the only
            window starts at 0).
        crop (int): Window length.
        stride (int): Step between windows, at most ``crop``.

    Returns:
        list[int]: ``0, stride, ...`` and, if the last of these does not
        reach the end, ``size - crop``.

    Examples:
        >>> window_starts(11, 4, 3)
        [0, 3, 6, 7]
    """
    if size <= crop:
        return [0]
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] + crop < size:
        starts.append(size - crop)
    return starts


def _axis_gaussians(crop_size: Sequence[int],
                    sigma_scale: float) -> List[Tensor]:
    """The 1D factors (float64, maximum 1) of :func:`gaussian_weight`
    before its clamping, one per axis."""
    factors = []
    for n in crop_size:
        coord = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        gauss = torch.exp(-coord**2 / (2 * (sigma_scale * n)**2))
        factors.append(gauss / gauss.max())
    return factors


def gaussian_weight(crop_size: Sequence[int],
                    sigma_scale: float = 0.125,
                    device=None,
                    dtype=torch.float32) -> Tensor:
    """The window's Gaussian weights: ``EncoderDecoder3D.gaussian_weight``,
    which the MONAI-based path still uses (the same function then and
    now)."""
    from svd_mm.models.segmentors import EncoderDecoder3D
    return EncoderDecoder3D.gaussian_weight(crop_size, sigma_scale, device,
                                            dtype)


def _axis_weight_sums(padded: Triple, crop_size: Triple,
                      starts: Sequence[Sequence[int]], blend: str,
                      sigma_scale: float,
                      dtype: torch.dtype) -> Optional[List[Tensor]]:
    """Per-axis factors of the sum of the window weights.

    The windows are the Cartesian product of the per-axis origins and the
    weight map of a window is a product of per-axis factors (1, or the
    Gaussian's), so the sum of the weights at a voxel is the product of one
    sum per axis: no full-size buffer is needed, and nothing is added per
    window.

    Returns:
        list[Tensor] or None: The three sums (float64) of shape (D,), (H,)
        and (W,) of the padded volume; None where the Gaussian map is not
        the product of its factors (clamped where it underflows, for a tiny
        ``sigma_scale``).
    """
    if blend == 'gaussian':
        factors = _axis_gaussians(crop_size, sigma_scale)
        smallest = math.prod(float(f.min()) for f in factors)
        if torch.tensor(smallest, dtype=dtype) <= 0:
            return None
    else:
        factors = [torch.ones(c, dtype=torch.float64) for c in crop_size]
    sums = []
    for n, crop, axis_starts, factor in zip(padded, crop_size, starts,
                                            factors):
        axis_sum = torch.zeros(n, dtype=torch.float64)
        for origin in axis_starts:
            axis_sum[origin:origin + crop] += factor
        sums.append(axis_sum)
    return sums


def slide_inference(inputs: Tensor,
                    predictor: Callable[[Tensor], Tensor],
                    crop_size: Triple,
                    stride: Triple,
                    num_classes: int,
                    batch_windows: int = 1,
                    blend: str = 'constant',
                    sigma_scale: float = 0.125,
                    pad_value: float = 0) -> Tensor:
    """Inference with overlapping (D, H, W) windows (svd_mm's former own
    implementation).

    Args:
        inputs (Tensor): (N, C, D, H, W) volumes.
        predictor (Callable): The network: (B, C, d, h, w) windows to
            (B, K, d, h, w) logits (``EncoderDecoder3D.encode_decode``).
        crop_size (tuple[int]): (D, H, W) of the window.
        stride (tuple[int]): (D, H, W) step of the windows.
        num_classes (int): K, the channels of the logits.
        batch_windows (int): Window positions per network call (times N
            windows). Defaults to 1.
        blend (str): ``'constant'`` or ``'gaussian'``.
            Defaults to 'constant'.
        sigma_scale (float): Gaussian standard deviation over window
            length. Defaults to 0.125.
        pad_value (float): Value of the padding of a volume smaller than
            the window. Defaults to 0.

    Returns:
        Tensor: (N, K, D, H, W) blended logits.
    """
    crop_size, stride = tuple(crop_size), tuple(stride)
    num_volumes = inputs.shape[0]
    size = tuple(inputs.shape[2:])
    padded = tuple(max(s, c) for s, c in zip(size, crop_size))
    if padded != size:
        inputs = F.pad(inputs,
                       (0, padded[2] - size[2], 0, padded[1] - size[1], 0,
                        padded[0] - size[0]), 'constant', pad_value)
    starts = [
        window_starts(s, c, st) for s, c, st in zip(padded, crop_size, stride)
    ]
    windows = list(itertools.product(*starts))
    if blend == 'gaussian':
        weight = gaussian_weight(crop_size, sigma_scale, inputs.device,
                                 inputs.dtype)
    else:
        weight = None
    preds = inputs.new_zeros((num_volumes, num_classes) + padded)
    axis_sums = _axis_weight_sums(padded, crop_size, starts, blend,
                                  sigma_scale, inputs.dtype)
    weight_sum = None
    if axis_sums is None:
        weight_sum = inputs.new_zeros((1, 1) + padded)
    for first in range(0, len(windows), batch_windows):
        chunk = windows[first:first + batch_windows]
        slices = [(slice(None), slice(None)) +
                  tuple(slice(o, o + c) for o, c in zip(origin, crop_size))
                  for origin in chunk]
        crops = torch.cat([inputs[s] for s in slices])
        logits = predictor(crops)
        logits = logits.view(len(chunk), num_volumes, *logits.shape[1:])
        for s, window_logits in zip(slices, logits):
            # in place: no full-size temporaries at any point
            if weight is None:
                preds[s] += window_logits
            else:
                preds[s].addcmul_(window_logits, weight)
            if weight_sum is not None:
                weight_sum[s] += weight
    if weight_sum is not None:
        preds.div_(weight_sum)
    else:
        for axis, axis_sum in enumerate(axis_sums):
            shape = [1] * 5
            shape[2 + axis] = -1
            preds.div_(axis_sum.to(preds).view(shape))
    return preds[:, :, :size[0], :size[1], :size[2]]
