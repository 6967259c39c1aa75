"""Centre crop of a volume with an optional random shift (ACS's "move")."""
from numbers import Integral
from typing import Callable, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.registry import TRANSFORMS

from .lazy_volume import LazyNiftiVolume, materialize_lazy_volumes
from .utils import _format_repr, _require_key

__all__ = ['CenterCrop3D', 'Crop3D', 'crop_volume_results', 'map_volumes']

IntOrTriple = Union[int, Sequence[int]]


def _to_triple(value: IntOrTriple, name: str,
               min_value: int) -> Tuple[int, int, int]:
    """Turn an int or a sequence of 3 ints into a (D, H, W) triple."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (int(value), ) * 3
    elif (isinstance(value, Sequence) and len(value) == 3 and all(
            isinstance(v, Integral) and not isinstance(v, bool)
            for v in value)):
        value = tuple(int(v) for v in value)
    else:
        raise TypeError(f'{name} must be an int or a sequence of 3 ints '
                        f'(D, H, W), but got {value!r}')
    if min(value) < min_value:
        raise ValueError(f'{name} must be >= {min_value} on every axis, but '
                         f'got {value}')
    return value


def _to_axes(axes: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    """Check distinct spatial axes (0 = D, 1 = H, 2 = W); sorted."""
    if isinstance(axes, int):
        axes = (axes, )
    axes = tuple(axes)
    if (not axes or len(set(axes)) != len(axes)
            or not set(axes) <= {0, 1, 2}):
        raise ValueError('axes must be distinct spatial axes from '
                         f'(0, 1, 2) for (D, H, W), but got {axes}')
    return tuple(sorted(axes))


def _spatial_shape(results: dict,
                   transform: str,
                   lazy: bool = False) -> Tuple[int, int, int]:
    """Check ``img`` (C, D, H, W) and every seg field (D, H, W) agree.

    ``lazy``: whether the transform takes the
    :class:`~svd_mm.datasets.transforms.lazy_volume.LazyNiftiVolume` views
    of ``LoadVolumeNifti(lazy=True)`` (the crops, which read their box);
    otherwise the views are read whole into arrays first.
    """
    source = results.get('img_path', results.get('case_id', '<unknown>'))
    _require_key(results, 'img', transform, f' ({source})')
    if not lazy:
        materialize_lazy_volumes(results)
    img = results['img']
    if not isinstance(img, (np.ndarray, LazyNiftiVolume)) or img.ndim != 4:
        raise ValueError(
            f'{transform} expects img to be a (C, D, H, W) ndarray, but got '
            f'{type(img).__name__} of shape {getattr(img, "shape", None)} '
            f'from {source}. Load volumes with LoadNoduleNpz (or another '
            'loader that adds the channel axis) first.')
    shape = tuple(img.shape[1:])
    for key in results.get('seg_fields', []):
        seg = results[key]
        if tuple(seg.shape) != shape:
            raise ValueError(
                f'{transform}: {key} of shape {tuple(seg.shape)} does not '
                f'match the (D, H, W) = {shape} of img from {source}')
    return shape


def map_volumes(results: dict,
                fn: Callable[[np.ndarray, int], np.ndarray]) -> None:
    """Replace ``img`` by ``fn(img, 1)`` and every seg field by
    ``fn(seg, 0)``: the same change of the (D, H, W) grid for all.

    Args:
        results (dict): Result dict with ``img`` (C, D, H, W) and
            optionally ``seg_fields`` naming (D, H, W) maps.
        fn (callable): ``fn(array, lead)``, ``lead`` being the number of
            axes in front of (D, H, W).
    """
    results['img'] = fn(results['img'], 1)
    for key in results.get('seg_fields', []):
        results[key] = fn(results[key], 0)


def crop_volume_results(results: dict, starts: Sequence[int],
                        crop_size: Sequence[int], pad_val: float,
                        seg_pad_val: int) -> dict:
    """Crop ``img`` and every seg field to one (D, H, W) box, padding the
    part of the box that lies outside the volume.

    This is the one crop routine of the 3D crop transforms; they differ only
    in how they choose ``starts``.

    Args:
        results (dict): Result dict with ``img`` (C, D, H, W) and optionally
            ``seg_fields`` naming (D, H, W) maps; arrays or
            :class:`~svd_mm.datasets.transforms.lazy_volume.LazyNiftiVolume`
            views, from which only the box is read.
        starts (Sequence[int]): First voxel of the box on each of D, H, W in
            the coordinates of the input volume; may be negative, and the box
            may end beyond the volume.
        crop_size (Sequence[int]): Box size (D, H, W).
        pad_val (float): Value of padded image voxels.
        seg_pad_val (int): Value of padded voxels in the seg fields.

    Returns:
        dict: The result dict, with C-contiguous ``img`` of shape
        (C, *crop_size), cropped seg fields, ``img_shape`` = crop_size and
        ``crop_bbox`` = (d0, h0, w0, d1, h1, w1) in input voxel coordinates
        (end exclusive).
    """
    shape = results['img'].shape[1:]
    src, pads = [], []
    for start, size, length in zip(starts, shape, crop_size):
        stop = start + length
        lo, hi = min(max(start, 0), size), min(max(stop, 0), size)
        src.append(slice(lo, hi))
        before = lo - start
        pads.append((before, length - before - (hi - lo)))

    def _crop(arr: np.ndarray, lead: int) -> np.ndarray:
        out = arr[(slice(None), ) * lead + tuple(src)]
        if any(p != (0, 0) for p in pads):
            out = np.pad(
                out, [(0, 0)] * lead + pads,
                mode='constant',
                constant_values=pad_val if lead else seg_pad_val)
        return np.ascontiguousarray(out)

    map_volumes(results, _crop)
    results['img_shape'] = tuple(crop_size)
    results['crop_bbox'] = tuple(int(s) for s in starts) + tuple(
        int(s + n) for s, n in zip(starts, crop_size))
    return results


class Crop3D(BaseTransform):
    """Base of the 3D crops: cut the box whose first voxel :meth:`_starts`
    chooses from ``img`` and every key in ``seg_fields``
    (:func:`crop_volume_results`, with the ``crop_size``, ``pad_val`` and
    ``seg_pad_val`` of the transform).

    Required Keys:

    - img (np.ndarray | LazyNiftiVolume): (C, D, H, W); from the view of
      ``LoadVolumeNifti(lazy=True)`` only the box is read.
    - seg_fields (list[str], optional): Keys of (D, H, W) maps (arrays or
      views).

    Modified Keys:

    - img: (C, *crop_size), C-contiguous ndarray, same dtype.
    - img_shape: ``crop_size``.
    - every key in seg_fields: ``crop_size``.

    Added Keys:

    - crop_bbox (tuple): (d0, h0, w0, d1, h1, w1) of the box in the voxel
      coordinates of the input (end exclusive, may extend beyond the input
      where it was padded).
    """

    def _starts(self, results: dict,
                shape: Tuple[int, int, int]) -> Sequence[int]:
        """First voxel of the box on each of D, H, W."""
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        """Cut the box from the volume and its seg fields.

        Args:
            results (dict): Result dict with a (C, D, H, W) ``img``.

        Returns:
            dict: The cropped result dict.
        """
        shape = _spatial_shape(results, type(self).__name__, lazy=True)
        return crop_volume_results(results, self._starts(results, shape),
                                   self.crop_size, self.pad_val,
                                   self.seg_pad_val)


@TRANSFORMS.register_module()
class CenterCrop3D(Crop3D):
    """Crop a (D, H, W) box around the volume centre, optionally shifted.

    The box starts at ``(size - crop) // 2 + offset`` on each axis, where the
    offset is drawn uniformly from the integers in ``[-jitter, jitter]``
    (independently per axis). With ``jitter=0`` this is the deterministic
    test-time crop; with ``jitter > 0`` it is the random "move" of the ACS
    LIDC-IDRI pipeline (crop 48, move 5 for training). The same box is cut
    from ``img`` and every key in ``seg_fields``.

    Where the box leaves the volume (a volume smaller than the crop, or a
    large jitter), the missing voxels are padded with ``pad_val`` in the
    image (0, which is -1024 HU = air for volumes windowed like the
    LIDC-IDRI release) and ``seg_pad_val`` in the seg fields (255, the
    ``ignore_index`` of mmseg). Keys: as :class:`Crop3D`.

    Args:
        crop_size (int | Sequence[int]): Output size (D, H, W); an int means
            a cube.
        jitter (int | Sequence[int]): Largest shift of the box centre, in
            voxels, per axis (D, H, W). Defaults to 0.
        pad_val (float): Value of padded image voxels. Defaults to 0.
        seg_pad_val (int): Value of padded voxels in the seg fields.
            Defaults to 255.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import CenterCrop3D
        >>> img = np.arange(8 * 10 * 12).reshape(1, 8, 10, 12)
        >>> results = CenterCrop3D(crop_size=(4, 6, 16))(dict(img=img))
        >>> results['img'].shape, results['crop_bbox']
        ((1, 4, 6, 16), (2, 2, -2, 6, 8, 14))
    """

    def __init__(self,
                 crop_size: IntOrTriple,
                 jitter: IntOrTriple = 0,
                 pad_val: float = 0,
                 seg_pad_val: int = 255):
        self.crop_size = _to_triple(crop_size, 'crop_size', 1)
        self.jitter = _to_triple(jitter, 'jitter', 0)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @cache_randomness
    def _random_offset(self) -> np.ndarray:
        """Draw the shift of each axis from [-jitter, jitter]."""
        jitter = np.array(self.jitter)
        if not jitter.any():
            return np.zeros(3, dtype=np.int64)
        return np.random.randint(-jitter, jitter + 1)

    def _starts(self, results: dict,
                shape: Tuple[int, int, int]) -> Sequence[int]:
        """The (shifted) centre box."""
        offset = self._random_offset()
        return [(size - crop) // 2 + int(o)
                for size, crop, o in zip(shape, self.crop_size, offset)]

    def __repr__(self) -> str:
        return _format_repr(self, 'crop_size', 'jitter', 'pad_val',
                            'seg_pad_val')
