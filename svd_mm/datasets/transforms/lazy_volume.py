"""A (D, H, W) view of an uncompressed NIfTI file that reads only the boxes
cut from it.

:class:`~svd_mm.datasets.transforms.LoadVolumeNifti` with ``lazy=True``
puts a :class:`LazyNiftiVolume` instead of an array into the results, so that
the crop transforms (:class:`~svd_mm.datasets.transforms.RandomCrop3D`,
:class:`~svd_mm.datasets.transforms.CenterCrop3D`) read only their box
through nibabel's ``ArrayProxy`` slicing of the uncompressed ``.nii`` file.
The boxes hold the same values as the same boxes of the array
:func:`~svd_mm.utils.volume_io.read_nifti` returns.

The other volume transforms of svd_mm read the whole volume first
(:func:`materialize_lazy_volumes`), as an eager loader would have; any other
code gets an array from ``np.asarray(view)``.
"""
import os.path as osp
from numbers import Integral
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from svd_mm.utils.volume_io import Geometry, load_nifti_image, make_geometry

from .utils import _format_repr

__all__ = ['LazyNiftiVolume', 'open_nifti_lazy', 'materialize_lazy_volumes']

Convert = Callable[[np.ndarray, str], np.ndarray]


def _clamp(key: slice, size: int) -> slice:
    """``key`` with its bounds within an axis of ``size``: the same
    elements."""
    start, stop, step = key.indices(size)
    return slice(start, None if stop < 0 else stop, step)


def _check_size(proxy, path: str) -> None:
    """Reject a file shorter than its header says (naming it)."""
    shape = tuple(int(s) for s in proxy.shape)
    needed = int(proxy.offset) + int(np.prod(shape)) * np.dtype(
        proxy.dtype).itemsize
    size = osp.getsize(path)
    if size < needed:
        raise ValueError(
            f'NIfTI file {path} is truncated: {size} bytes, but its header '
            f'({shape} {np.dtype(proxy.dtype)} at offset {proxy.offset}) '
            f'needs {needed}')


class LazyNiftiVolume:
    """Array-like (D, H, W) or (1, D, H, W) view of a NIfTI file's data.

    The file's (i, j, k) data are presented as (D, H, W) = (k, j, i), the
    layout of :func:`~svd_mm.utils.volume_io.read_nifti`, with an optional
    channel axis of size 1 in front. Indexing with ints and slices (numpy's
    basic indexing, ``...`` included) reads only that box and returns a
    C-contiguous ndarray; ``np.asarray(view)`` reads the whole volume.

    A box is read through nibabel's ``ArrayProxy`` slicing: only the byte
    ranges of the box, scaled if the header says so
    (``benchmarks/loader.py``).

    Args:
        proxy (nibabel.arrayproxy.ArrayProxy): ``img.dataobj`` of the file
            (its shape, dtype, offset and scaling).
        path (str): The file.
        channel (bool): Whether to present a channel axis of size 1 in
            front. Defaults to False.
        dtype (np.dtype, optional): dtype of the boxes. Defaults to None:
            the proxy's (scaled) dtype.
        convert (callable, optional): ``convert(box, path)`` applied to every
            box read (checks and casts, e.g. of labels); it must keep the
            shape. Defaults to None.
    """

    def __init__(self,
                 proxy,
                 path: str,
                 channel: bool = False,
                 dtype: Optional[np.dtype] = None,
                 convert: Optional[Convert] = None):
        shape = tuple(int(s) for s in proxy.shape)
        if len(shape) < 3 or any(s != 1 for s in shape[3:]):
            raise ValueError(f'{path} holds an array of shape {shape}; '
                             'expected a 3D volume (i, j, k)')
        self._proxy = proxy
        self._trailing = len(shape) - 3
        self.path = path
        self._lead = int(channel)
        self._spatial = shape[2::-1]
        if dtype is None:  # what slicing gives: stored, or scaled values
            scaled = not (float(proxy.slope) == 1.
                          and float(proxy.inter) == 0.)
            dtype = np.asarray(proxy[(0, ) * len(shape)]).dtype \
                if scaled else proxy.dtype
        self.dtype = np.dtype(dtype)
        self._convert = convert

    @property
    def shape(self) -> Tuple[int, ...]:
        """(D, H, W), or (1, D, H, W) with a channel axis."""
        return (1, ) * self._lead + self._spatial

    @property
    def spatial_shape(self) -> Tuple[int, int, int]:
        """(D, H, W)."""
        return self._spatial

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _full_key(self, key) -> tuple:
        """The key as one int or slice per presented axis."""
        key = key if isinstance(key, tuple) else (key, )
        ellipses = [i for i, k in enumerate(key) if k is Ellipsis]
        if len(ellipses) > 1:
            raise IndexError('an index can only have a single ellipsis')
        if ellipses:
            i = ellipses[0]
            key = key[:i] + (slice(None), ) * (self.ndim - len(key) + 1) + \
                key[i + 1:]
        if len(key) > self.ndim:
            raise IndexError(f'too many indices for the {self.ndim}-D view '
                             f'of {self.path}: {key}')
        for k in key:
            if not (isinstance(k, slice) or
                    (isinstance(k, Integral) and not isinstance(k, bool))):
                raise TypeError(
                    f'{type(self).__name__} of {self.path} takes ints and '
                    f'slices only, got {k!r}; use np.asarray(view) for '
                    'other indexing')
        key = key + (slice(None), ) * (self.ndim - len(key))
        for k, n in zip(key, self.shape):
            if isinstance(k, Integral) and not -n <= k < n:
                raise IndexError(f'index {k} is out of bounds for an axis of '
                                 f'size {n} of {self.path}')
        return key

    def _read(self, box: tuple) -> np.ndarray:
        """Read a (D, H, W) box through nibabel's proxy; slice bounds are
        clamped to the axes first, as numpy does (nibabel's reader seeks
        to a start before the file's data and fails)."""
        _check_size(self._proxy, self.path)  # changed since opening?
        box = tuple(
            _clamp(k, size) if isinstance(k, slice) else k
            for k, size in zip(box, self._spatial))
        out = self._proxy[tuple(reversed(box)) + (0, ) * self._trailing]
        if isinstance(out, np.memmap):  # the whole file, mapped: copy it
            return np.array(out.T, order='C')  # (i, j, k) -> (k, j, i)
        return np.ascontiguousarray(out.T)

    def __getitem__(self, key) -> np.ndarray:
        """Read the box ``key`` (ints and slices over the presented axes)."""
        key = self._full_key(key)
        lead, spatial = key[:self._lead], key[self._lead:]
        box = self._read(spatial)
        if self._convert is not None:
            box = self._convert(box, self.path)
        if box.dtype != self.dtype:
            box = box.astype(self.dtype)
        if self._lead:
            box = box[None][lead[0]]
        return box

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Read the whole volume (numpy's array protocol)."""
        if copy is False:
            raise ValueError(f'Reading {self.path} makes a new array; '
                             'np.asarray(view, copy=False) is impossible')
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return _format_repr(self, 'path', 'shape', 'dtype')


def open_nifti_lazy(path: str,
                    channel: bool = False,
                    dtype: Optional[np.dtype] = None,
                    convert: Optional[Convert] = None
                    ) -> Tuple[LazyNiftiVolume, Geometry]:
    """Open an uncompressed NIfTI file as a :class:`LazyNiftiVolume`,
    reading only its header.

    The checks of :func:`~svd_mm.utils.volume_io.read_nifti` that need no
    voxel are made here (missing, empty, not NIfTI, not 3D, an axis of size
    0, bad affine), plus one that reading would only meet later: a file
    shorter than its header says is rejected. Voxel checks (e.g. finite
    values) are the job of ``convert``, on each box.

    Args:
        path (str): A ``.nii`` file.
        channel (bool): Whether the view has a channel axis of size 1.
            Defaults to False.
        dtype (np.dtype, optional): dtype of the boxes, see
            :class:`LazyNiftiVolume`. Defaults to None.
        convert (callable, optional): Applied to every box, see
            :class:`LazyNiftiVolume`. Defaults to None.

    Returns:
        tuple[LazyNiftiVolume, dict]: The view and the geometry of the
        (D, H, W) grid (:func:`~svd_mm.utils.volume_io.make_geometry`).
    """
    if not str(path).lower().endswith('.nii'):
        raise ValueError(f'{path} is not an uncompressed .nii file; read '
                         'it whole with svd_mm.utils.volume_io.read_nifti')
    img = load_nifti_image(path)
    import nibabel as nib
    from nibabel.arrayproxy import ArrayProxy
    proxy = img.dataobj
    if not isinstance(img, nib.Nifti1Image) or \
            not isinstance(proxy, ArrayProxy):
        raise ValueError(f'{path} is a {type(img).__name__}, not a '
                         'single-file NIfTI image (.nii)')
    shape = tuple(int(s) for s in proxy.shape)
    if 0 in shape:
        raise ValueError(f'{path} holds an empty volume of shape {shape}')
    _check_size(proxy, path)
    view = LazyNiftiVolume(proxy, path, channel, dtype, convert)
    try:
        geometry = make_geometry(img.affine, view.spatial_shape)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from e
    return view, geometry


def materialize_lazy_volumes(results: dict,
                             keys: Optional[Sequence[str]] = None) -> dict:
    """Replace every :class:`LazyNiftiVolume` among ``img`` and the seg
    fields (or ``keys``) by the whole array it views.

    Args:
        results (dict): Result dict.
        keys (Sequence[str], optional): Keys to look at. Defaults to None:
            ``'img'`` and ``results['seg_fields']``.

    Returns:
        dict: ``results``, modified in place.
    """
    if keys is None:
        keys = ['img'] + list(results.get('seg_fields', []))
    for key in keys:
        if isinstance(results.get(key), LazyNiftiVolume):
            results[key] = np.asarray(results[key])
    return results
