"""The Variable Dimension Transform (VDT) of SVD-Net."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .utils import _check_prob, _format_repr, _require_key

__all__ = ['RGBToVolume']

# Index of each colour in an image whose last axis is in BGR order (mmcv
# loads images as BGR).
_BGR_INDEX = {'b': 0, 'g': 1, 'r': 2}


@TRANSFORMS.register_module()
class RGBToVolume(BaseTransform):
    """Turn an RGB image into a one-channel pseudo-3D volume (the VDT).

    The Variable Dimension Transform of SVD-Net makes the colour axis of a
    2D natural image the depth axis of a 3D volume: an image of shape
    (H, W, 3) becomes a volume of shape (C', D', H, W) = (1, 3, H, W), whose
    three slices are the colour planes. A 3D CNN pre-trained on such volumes
    can then be transferred to 3D medical images of shape (1, D, H, W).

    Put it after the usual 2D augmentations (resize, crop, flip), right
    before the packing transform, so that ``img_shape`` keeps describing the
    (H, W) plane. mmpretrain's ``PackInputs`` passes a 4-D array through
    unchanged; in mmdet use
    :class:`~svd_mm.datasets.transforms.PackDetVolumeInputs`.

    Normalisation is left to
    :class:`~svd_mm.models.data_preprocessors.VolumeDataPreprocessor`, so the
    volume keeps the image dtype (uint8 stays uint8).

    Required Keys:

    - img (np.ndarray): (H, W, 3) in BGR channel order, as loaded by
      ``LoadImageFromFile``.

    Modified Keys:

    - img: (1, 3, H, W), C-contiguous, same dtype.

    Added Keys:

    - volume_shape (tuple): ``(1, 3, H, W)``.
    - volume_slice_order (str): The colour of each depth slice after the
      optional shuffle, e.g. ``'rgb'`` or ``'gbr'``.

    Args:
        slice_order (str): Which colour goes to which depth slice, ``'rgb'``
            (slice 0 is red) or ``'bgr'`` (slice 0 is blue, the order mmcv
            loads). Defaults to ``'rgb'``.
        shuffle_prob (float): Probability of randomly permuting the three
            slices, the channel shuffle augmentation of SVD-Net pre-training.
            Uses numpy's global random state, so ``mmengine``'s seeding makes
            it reproducible. Defaults to 0.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import RGBToVolume
        >>> bgr = np.zeros((32, 48, 3), dtype=np.uint8)
        >>> bgr[..., 2] = 255  # red in BGR order
        >>> results = RGBToVolume()(dict(img=bgr))
        >>> results['img'].shape, results['img'].dtype
        ((1, 3, 32, 48), dtype('uint8'))
        >>> int(results['img'][0, 0].max()), results['volume_slice_order']
        (255, 'rgb')
    """

    def __init__(self, slice_order: str = 'rgb', shuffle_prob: float = 0.):
        if slice_order not in ('rgb', 'bgr'):
            raise ValueError("slice_order must be 'rgb' or 'bgr', but got "
                             f'{slice_order!r}')
        self.slice_order = slice_order
        self.shuffle_prob = _check_prob(shuffle_prob, 'shuffle_prob')

    @cache_randomness
    def _random_permutation(self) -> Optional[np.ndarray]:
        """Draw a permutation of the 3 slices, or None to keep the order."""
        if self.shuffle_prob > 0 and np.random.rand() < self.shuffle_prob:
            return np.random.permutation(3)
        return None

    def _check_img(self, results: dict) -> np.ndarray:
        img = _require_key(results, 'img', type(self).__name__,
                           f" (image: {results.get('img_path')})")
        if (not isinstance(img, np.ndarray) or img.ndim != 3
                or img.shape[2] != 3):
            shape = getattr(img, 'shape', None)
            raise ValueError(
                f'{self.__class__.__name__} expects an (H, W, 3) colour '
                f'image, but got {type(img).__name__} of shape {shape} '
                f"from {results.get('img_path')}. Load images with "
                "LoadImageFromFile(color_type='color') (grayscale and RGBA "
                'images are not converted), and apply RGBToVolume once, '
                'after the 2D transforms and before packing.')
        return img

    def transform(self, results: dict) -> dict:
        """Turn ``results['img']`` into a (1, 3, H, W) volume.

        Args:
            results (dict): Result dict from the loading pipeline.

        Returns:
            dict: The result dict with the volume in ``img``.
        """
        img = self._check_img(results)
        order = self.slice_order
        perm = self._random_permutation()
        if perm is not None:
            order = ''.join(order[i] for i in perm)
        index = [_BGR_INDEX[c] for c in order]
        # (H, W, 3) -> (3, H, W) -> (1, 3, H, W); fancy indexing copies.
        volume = np.ascontiguousarray(img.transpose(2, 0, 1)[index][None])
        results['img'] = volume
        results['volume_shape'] = volume.shape
        results['volume_slice_order'] = order
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'slice_order', 'shuffle_prob')
