"""Affine intensity scaling of a volume."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from .utils import _format_repr, _require_key

__all__ = ['ScaleIntensity']


@TRANSFORMS.register_module()
class ScaleIntensity(BaseTransform):
    """Map image intensities as ``img * scale + offset`` in float32.

    The defaults reproduce the normalisation of ACS's LIDC-IDRI loader,
    ``voxel / 255. - 1``: the release stores CT windowed to [-1024, 400] HU
    as uint8 [0, 255], which becomes [-1, 0]. ``offset=-0.5`` centres it
    instead ([-0.5, 0.5]). Only ``img`` changes; label maps are untouched.
    Put it after the geometric transforms (they move uint8 volumes, a
    quarter of the float32 bytes). A ``VolumeDataPreprocessor`` without
    ``mean``/``std`` then passes the values through.

    Required Keys:

    - img (np.ndarray): Any shape, any numeric dtype.

    Modified Keys:

    - img: float32, same shape.

    Args:
        scale (float): Factor applied first. Defaults to 1 / 255.
        offset (float): Added after scaling. Defaults to -1.
        clip (Sequence[float], optional): ``(low, high)`` to clip the input
            intensities to before scaling, e.g. a HU window for raw CT.
            Defaults to None (no clipping).

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import ScaleIntensity
        >>> img = np.array([[[[0, 255]]]], dtype=np.uint8)
        >>> ScaleIntensity()(dict(img=img))['img'].ravel()
        array([-1.,  0.], dtype=float32)
    """

    def __init__(self,
                 scale: float = 1. / 255.,
                 offset: float = -1.,
                 clip: Optional[Sequence[float]] = None):
        for name, value in (('scale', scale), ('offset', offset)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not np.isfinite(value):
                raise ValueError(f'{name} must be a finite number, but got '
                                 f'{value!r}')
        if scale == 0:
            raise ValueError('scale must not be 0: it would erase the image')
        if clip is not None:
            if len(clip) != 2 or not clip[0] < clip[1]:
                raise ValueError('clip must be (low, high) with low < high, '
                                 f'but got {clip!r}')
            clip = (float(clip[0]), float(clip[1]))
        self.scale = float(scale)
        self.offset = float(offset)
        self.clip = clip

    def transform(self, results: dict) -> dict:
        """Scale ``results['img']``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict with a float32 ``img``.
        """
        img = np.asarray(
            _require_key(results, 'img', type(self).__name__),
            dtype=np.float32)
        if self.clip is not None:
            img = np.clip(img, *self.clip)
        results['img'] = img * np.float32(self.scale) + np.float32(
            self.offset)
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'scale', 'offset', 'clip')
