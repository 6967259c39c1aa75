"""Random crop of a volume and its seg fields."""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .center_crop_3d import Crop3D, IntOrTriple, _to_triple
from .utils import _format_repr

__all__ = ['RandomCrop3D']


@TRANSFORMS.register_module()
class RandomCrop3D(Crop3D):
    """Crop a (D, H, W) box at a random position of the volume.

    On each axis the first voxel of the box is drawn uniformly from
    ``[0, size - crop]``, so the box lies inside the volume. On an axis where
    the volume is smaller than the crop, the start is drawn from
    ``[size - crop, 0]`` instead: the whole volume is kept at a random place
    of the box and the rest is padded with ``pad_val`` in the image and
    ``seg_pad_val`` in the seg fields. The same box is cut from ``img`` and
    every key in ``seg_fields``.

    For segmentation, ``cat_max_ratio < 1`` re-draws the box (at most 10
    times, as mmseg's ``RandomCrop``) while a single class covers more than
    that fraction of the labelled voxels of ``gt_seg_map`` in it (only the
    box is read from a view). Keys: as
    :class:`~svd_mm.datasets.transforms.center_crop_3d.Crop3D`.

    Args:
        crop_size (int | Sequence[int]): Output size (D, H, W); an int means
            a cube.
        cat_max_ratio (float): Largest fraction of the labelled voxels of the
            box that one class may cover, in (0, 1]. 1 disables the check.
            Defaults to 1.
        ignore_index (int): Label not counted by ``cat_max_ratio``.
            Defaults to 255.
        pad_val (float): Value of padded image voxels. Defaults to 0.
        seg_pad_val (int): Value of padded voxels in the seg fields.
            Defaults to 255.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import RandomCrop3D
        >>> img = np.zeros((1, 40, 64, 30), dtype=np.uint8)
        >>> results = RandomCrop3D(crop_size=(32, 48, 48))(dict(img=img))
        >>> results['img'].shape, results['img_shape']
        ((1, 32, 48, 48), (32, 48, 48))
    """

    def __init__(self,
                 crop_size: IntOrTriple,
                 cat_max_ratio: float = 1.,
                 ignore_index: int = 255,
                 pad_val: float = 0,
                 seg_pad_val: int = 255):
        self.crop_size = _to_triple(crop_size, 'crop_size', 1)
        if not 0. < cat_max_ratio <= 1.:
            raise ValueError('cat_max_ratio must be in (0, 1], but got '
                             f'{cat_max_ratio}')
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @cache_randomness
    def _random_starts(self, shape: Sequence[int]) -> Tuple[int, ...]:
        """Draw the first voxel of the box on each axis."""
        starts = []
        for size, crop in zip(shape, self.crop_size):
            lo, hi = min(0, size - crop), max(0, size - crop)
            starts.append(int(np.random.randint(lo, hi + 1)))
        return tuple(starts)

    def _too_uniform(self, seg: np.ndarray, starts: Sequence[int]) -> bool:
        """Whether one class covers more than ``cat_max_ratio`` of the
        labelled voxels of the box (boxes are inside the map here or padded
        with ignored voxels, so only the inside part is counted)."""
        box = tuple(
            slice(max(s, 0), max(s + c, 0))
            for s, c in zip(starts, self.crop_size))
        labels, counts = np.unique(seg[box], return_counts=True)
        counts = counts[labels != self.ignore_index]
        return len(counts) <= 1 or \
            counts.max() / counts.sum() >= self.cat_max_ratio

    def _starts(self, results: dict,
                shape: Tuple[int, int, int]) -> Tuple[int, ...]:
        """A random box, re-drawn while ``_too_uniform``."""
        starts = self._random_starts(shape)
        if self.cat_max_ratio < 1. and 'gt_seg_map' in results:
            for _ in range(10):
                if not self._too_uniform(results['gt_seg_map'], starts):
                    break
                starts = self._random_starts(shape)
        return starts

    def __repr__(self) -> str:
        return _format_repr(self, 'crop_size', 'cat_max_ratio',
                            'ignore_index', 'pad_val', 'seg_pad_val')
