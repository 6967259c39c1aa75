"""Random flips of a volume along its spatial axes."""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .center_crop_3d import _spatial_shape, _to_axes, map_volumes
from .utils import _check_prob, _format_repr

__all__ = ['RandomFlip3D']


@TRANSFORMS.register_module()
class RandomFlip3D(BaseTransform):
    """Flip a volume along each of the given spatial axes at random.

    Each axis in ``axes`` (0 = D, 1 = H, 2 = W) is flipped independently
    with probability ``prob``, so with the defaults every one of the 8
    reflections of the voxel grid is equally likely. The same flips are
    applied to ``img`` and every key in ``seg_fields``. (ACS's LIDC-IDRI
    pipeline flips one random axis or none; flips of several axes compose to
    reflections and rotations by 180 degrees, which the nodule task is
    invariant to as well.)

    The flip is recorded as ``flip_axes``, not as mmcv's ``flip`` /
    ``flip_direction``, whose 2D directions ('horizontal', ...) mmseg's
    post-processing would try to undo.

    Required Keys:

    - img (np.ndarray): (C, D, H, W).
    - seg_fields (list[str], optional): Keys of (D, H, W) maps.

    Modified Keys:

    - img: C-contiguous, same shape and dtype.
    - every key in seg_fields.

    Added Keys:

    - flip_axes (tuple[int]): The spatial axes that were flipped, in
      increasing order; ``()`` when none was.

    Args:
        prob (float): Probability of flipping each axis, in [0, 1].
            Defaults to 0.5.
        axes (Sequence[int]): Spatial axes that may be flipped, a subset of
            (0, 1, 2) for (D, H, W). Defaults to (0, 1, 2).

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import RandomFlip3D
        >>> img = np.arange(24).reshape(1, 2, 3, 4)
        >>> results = RandomFlip3D(prob=1., axes=(2, ))(dict(img=img))
        >>> results['flip_axes'], results['img'][0, 0, 0].tolist()
        ((2,), [3, 2, 1, 0])
    """

    def __init__(self, prob: float = 0.5, axes: Sequence[int] = (0, 1, 2)):
        self.prob = _check_prob(prob, 'prob')
        self.axes = _to_axes(axes)

    @cache_randomness
    def _random_axes(self) -> Tuple[int, ...]:
        """Draw which of ``self.axes`` to flip."""
        draws = np.random.rand(len(self.axes)) < self.prob
        return tuple(a for a, d in zip(self.axes, draws) if d)

    def transform(self, results: dict) -> dict:
        """Flip the volume and its seg fields.

        Args:
            results (dict): Result dict with a (C, D, H, W) ``img``.

        Returns:
            dict: The flipped result dict.
        """
        _spatial_shape(results, self.__class__.__name__)
        axes = self._random_axes()
        if axes:
            map_volumes(
                results, lambda array, lead: np.ascontiguousarray(
                    np.flip(array, tuple(a + lead for a in axes))))
        results['flip_axes'] = axes
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'prob', 'axes')
