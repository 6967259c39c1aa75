"""Random rotations of a volume by multiples of 90 degrees."""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .center_crop_3d import _spatial_shape, map_volumes
from .utils import _check_prob, _format_repr

__all__ = ['RandomRot90_3D']


@TRANSFORMS.register_module()
class RandomRot90_3D(BaseTransform):
    """Rotate a volume by random multiples of 90 degrees in given planes.

    For each plane ``(a, b)`` in ``axes`` (spatial axes, 0 = D, 1 = H,
    2 = W), in the given order, the volume is rotated with probability
    ``prob`` by k * 90 degrees from axis a towards axis b (as
    ``np.rot90``), with k drawn uniformly from {1, 2, 3}. The same rotation
    is applied to ``img`` and every key in ``seg_fields``. A rotation by 90
    or 270 degrees swaps the two axes of the plane, so non-cubic volumes
    change shape and ``img_shape`` follows.

    ACS's LIDC-IDRI pipeline rotates in the three planes (0, 1), (0, 2),
    (1, 2) with k uniform in {0, 1, 2, 3} each; that is
    ``RandomRot90_3D(prob=0.75, axes=((0, 1), (0, 2), (1, 2)))``.

    Required Keys:

    - img (np.ndarray): (C, D, H, W).
    - seg_fields (list[str], optional): Keys of (D, H, W) maps.

    Modified Keys:

    - img: C-contiguous, same dtype; D, H, W permuted by odd rotations.
    - img_shape: (D, H, W) after the rotation.
    - every key in seg_fields.

    Added Keys:

    - rot90_axes (tuple[tuple[int, int]]): The planes, as given.
    - rot90_k (tuple[int]): The number of quarter turns applied in each
      plane (0 where it was not rotated).

    Args:
        prob (float): Probability of rotating in each plane, in [0, 1].
            Defaults to 0.75.
        axes (Sequence[Sequence[int]]): Planes of rotation, pairs of
            distinct spatial axes. Defaults to ((1, 2), ), the axial (H, W)
            plane.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import RandomRot90_3D
        >>> img = np.zeros((1, 8, 16, 32), dtype=np.uint8)
        >>> np.random.seed(1)
        >>> results = RandomRot90_3D(prob=1.)(dict(img=img))
        >>> results['rot90_k'], results['img_shape']
        ((1,), (8, 32, 16))
    """

    def __init__(self,
                 prob: float = 0.75,
                 axes: Sequence[Sequence[int]] = ((1, 2), )):
        _check_prob(prob, 'prob')
        planes = []
        for plane in axes:
            plane = tuple(plane) if isinstance(plane, Sequence) else plane
            if (not isinstance(plane, tuple) or len(plane) != 2
                    or plane[0] == plane[1]
                    or not set(plane) <= {0, 1, 2}):
                raise ValueError(
                    'axes must be pairs of distinct spatial axes from '
                    f'(0, 1, 2) for (D, H, W), such as ((1, 2), ), but got '
                    f'{axes!r}')
            planes.append(plane)
        if not planes:
            raise ValueError('axes must name at least one plane')
        self.prob = prob
        self.axes = tuple(planes)

    @cache_randomness
    def _random_k(self) -> Tuple[int, ...]:
        """Draw the quarter turns of each plane (0 = not rotated)."""
        ks = []
        for _ in self.axes:
            rotate = np.random.rand() < self.prob
            ks.append(int(np.random.randint(1, 4)) if rotate else 0)
        return tuple(ks)

    def transform(self, results: dict) -> dict:
        """Rotate the volume and its seg fields.

        Args:
            results (dict): Result dict with a (C, D, H, W) ``img``.

        Returns:
            dict: The rotated result dict.
        """
        _spatial_shape(results, self.__class__.__name__)
        ks = self._random_k()

        def rotate(array: np.ndarray, lead: int) -> np.ndarray:
            for (a, b), k in zip(self.axes, ks):
                array = np.rot90(array, k, axes=(a + lead, b + lead))
            return np.ascontiguousarray(array)

        if any(ks):
            map_volumes(results, rotate)
        results['img_shape'] = tuple(results['img'].shape[1:])
        results['rot90_axes'] = self.axes
        results['rot90_k'] = ks
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'prob', 'axes')
