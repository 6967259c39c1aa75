"""Random rescaling of a volume and its seg fields."""
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from svd_mm.utils.volume_io import _cast

from .center_crop_3d import _spatial_shape, _to_axes, map_volumes
from .utils import _format_repr

__all__ = ['RandomRescale3D']


@TRANSFORMS.register_module()
class RandomRescale3D(BaseTransform):
    """Rescale a volume by a random factor along some of its axes.

    A factor is drawn uniformly from ``scale_range``, one for all ``axes``
    (``keep_ratio=True``, the in-plane rescaling of SVD-Net's LiTS
    training with ``axes=(1, 2)``) or one per axis. Each rescaled axis of
    size n becomes ``max(1, round(n * factor))``; the other axes are kept.
    The image is interpolated trilinearly (``align_corners=False``) in
    float32 and cast back to its dtype (rounded and clipped for integer
    dtypes); the seg fields take the nearest voxel (``'nearest-exact'``),
    so labels, including the ``ignore_index`` 255, stay labels.

    Rescaling a whole CT volume is slow; crop a box of about
    ``crop / min(scale_range)`` first (:class:`RandomCrop3D`), rescale it
    and crop again to the final size.

    Required Keys:

    - img (np.ndarray): (C, D, H, W).
    - seg_fields (list[str], optional): Keys of (D, H, W) maps.

    Modified Keys:

    - img: (C, D', H', W'), same dtype.
    - img_shape: (D', H', W').
    - every key in seg_fields: (D', H', W').

    Added Keys:

    - rescale_factor (tuple[float]): The factor applied along (D, H, W)
      (1.0 for the axes not rescaled).

    Args:
        scale_range (Sequence[float]): (low, high) of the factor, with
            0 < low <= high. Defaults to (0.8, 1.2).
        axes (Sequence[int]): Spatial axes to rescale, a subset of
            (0, 1, 2) for (D, H, W). Defaults to (1, 2) (in-plane).
        keep_ratio (bool): Whether all ``axes`` share one factor.
            Defaults to True.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import RandomRescale3D
        >>> img = np.zeros((1, 8, 40, 50), dtype=np.uint8)
        >>> rescale = RandomRescale3D(scale_range=(1.5, 1.5))
        >>> results = rescale(dict(img=img))
        >>> results['img'].shape, results['rescale_factor']
        ((1, 8, 60, 75), (1.0, 1.5, 1.5))
    """

    def __init__(self,
                 scale_range: Sequence[float] = (0.8, 1.2),
                 axes: Sequence[int] = (1, 2),
                 keep_ratio: bool = True):
        scale_range = tuple(float(s) for s in scale_range)
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError('scale_range must be (low, high) with '
                             f'0 < low <= high, but got {scale_range}')
        self.scale_range = scale_range
        self.axes = _to_axes(axes)
        self.keep_ratio = keep_ratio

    @cache_randomness
    def _random_factor(self) -> Tuple[float, float, float]:
        """Draw the factor of each of (D, H, W)."""
        low, high = self.scale_range
        draws = np.random.uniform(low, high,
                                  1 if self.keep_ratio else len(self.axes))
        if self.keep_ratio:
            draws = np.repeat(draws, len(self.axes))
        factor = [1., 1., 1.]
        for axis, value in zip(self.axes, draws):
            factor[axis] = float(value)
        return tuple(factor)

    @staticmethod
    def _resize(array: np.ndarray, size: Tuple[int, int, int],
                lead: int) -> np.ndarray:
        """Resize a (C, D, H, W) image trilinearly (``lead`` 1) or a
        (D, H, W) map to the nearest voxel (``lead`` 0) with
        ``F.interpolate``."""
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float()
        kwargs = dict(mode='trilinear', align_corners=False) if lead else \
            dict(mode='nearest-exact')
        out = F.interpolate(tensor[(None, ) * (2 - lead)], size, **kwargs)
        out = out.reshape(array.shape[:lead] + size).numpy()
        return np.ascontiguousarray(_cast(out, array.dtype))

    def transform(self, results: dict) -> dict:
        """Rescale the volume and its seg fields.

        Args:
            results (dict): Result dict with a (C, D, H, W) ``img``.

        Returns:
            dict: The rescaled result dict.
        """
        shape = _spatial_shape(results, self.__class__.__name__)
        factor = self._random_factor()
        size = tuple(
            max(1, int(round(n * f))) for n, f in zip(shape, factor))
        if size != shape:
            map_volumes(results,
                        lambda array, lead: self._resize(array, size, lead))
        results['img_shape'] = size
        results['rescale_factor'] = factor
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'scale_range', 'axes', 'keep_ratio')
