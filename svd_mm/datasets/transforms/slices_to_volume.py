"""Turn an (H, W, D) slice stack into a one-channel (1, D, H, W) volume."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .utils import _check_prob, _format_repr

__all__ = ['SlicesToVolume']


@TRANSFORMS.register_module()
class SlicesToVolume(BaseTransform):
    """Move the slice axis of an (H, W, D) stack to a (1, D, H, W) volume.

    2D transforms (mmcv/mmdet ``Resize``, ``RandomFlip``, crops) treat the
    last axis of an image as channels, so multi-slice CT inputs such as the
    output of :class:`~svd_mm.datasets.transforms.LoadDeepLesionSlices` go
    through them as (H, W, D) stacks. Put this transform after them, right
    before the packing transform, to get the (C, D, H, W) volume of a 3D
    backbone with C = 1. ``img_shape`` keeps describing the (H, W) plane,
    as with :class:`~svd_mm.datasets.transforms.RGBToVolume`.

    Required Keys:

    - img (np.ndarray): (H, W, D) stack (or an (H, W) single slice).
    - slice_positions (np.ndarray, optional): (D, ) positions of the slices,
      reversed with a z flip.

    Modified Keys:

    - img: (1, D, H, W), C-contiguous, same dtype.
    - slice_positions: reversed when flipped.

    Added Keys:

    - volume_shape (tuple): ``(1, D, H, W)``.
    - slice_flip (bool): Whether the slice order was reversed.

    Args:
        flip_prob (float): Probability of reversing the slice order (a
            random flip along z). Uses numpy's global random state, so
            ``mmengine``'s seeding makes it reproducible. Defaults to 0.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import SlicesToVolume
        >>> stack = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
        >>> out = SlicesToVolume()(dict(img=stack))
        >>> out['img'].shape, out['volume_shape']
        ((1, 4, 2, 3), (1, 4, 2, 3))
        >>> float(out['img'][0, 1, 0, 2]) == float(stack[0, 2, 1])
        True
    """

    def __init__(self, flip_prob: float = 0.) -> None:
        self.flip_prob = _check_prob(flip_prob, 'flip_prob')

    @cache_randomness
    def _random_flip(self) -> bool:
        return self.flip_prob > 0 and np.random.rand() < self.flip_prob

    def transform(self, results: dict) -> dict:
        """Reorder the axes (and maybe flip along z).

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict with ``img`` of shape (1, D, H, W).
        """
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3:
            raise ValueError(
                f'{self.__class__.__name__} expects an (H, W, D) stack, but '
                f'got img of shape {tuple(img.shape)} from '
                f"{results.get('img_path')}")
        flip = self._random_flip()
        if flip:
            img = img[..., ::-1]
            if results.get('slice_positions') is not None:
                results['slice_positions'] = np.asarray(
                    results['slice_positions'])[::-1].copy()
        volume = np.ascontiguousarray(img.transpose(2, 0, 1)[None])
        results['img'] = volume
        results['volume_shape'] = volume.shape
        results['slice_flip'] = flip
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'flip_prob')
