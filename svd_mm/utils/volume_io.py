"""NIfTI volumes in svd_mm's (D, H, W) layout, their geometry, CT
preprocessing and writing predictions back onto the original grid.

Conventions:

- **Array layout.** A NIfTI file stores its data indexed (i, j, k); svd_mm
  works on (D, H, W) arrays with ``D = k`` (the slice axis), ``H = j`` and
  ``W = i``, i.e. the NIfTI data transposed by ``(2, 1, 0)`` (what
  SimpleITK's ``GetArrayFromImage`` returns as well).
- **Geometry.** A plain, JSON-serialisable dict

  - ``affine`` (list of 4 lists of 4 floats): the NIfTI affine (nibabel's
    ``img.affine``), mapping the voxel index (i, j, k) = (w, h, d) to RAS
    world coordinates in mm;
  - ``shape`` (list of 3 ints): (D, H, W);
  - ``spacing`` (list of 3 floats): voxel size along (D, H, W) in mm, the
    lengths of the affine's columns k, j, i.

  Functions accept the affine as a nested list or a (4, 4) ndarray.
- **Resampling.** One function samples any axis at fractional positions,
  :func:`resample_axis` (nearest or linear, in float32, built on
  :func:`interpolation_weights` and :func:`blend`, which a reader of slice
  files uses directly). Voxel centres sit at integer indices ("corner
  aligned"):
  :func:`resample_slice_spacing` keeps the first slice where it is and puts
  the others ``spacing_z`` mm apart, so the new grid's affine is the old one
  with its k column scaled. :func:`resample_to_geometry` maps any grid onto
  any other through their affines, which is how a prediction made on the
  resampled grid is written back onto the original one
  (:func:`save_prediction_nifti`).

The CT preprocessing of LiTS (:func:`preprocess_ct_image`,
:func:`preprocess_label`) is called both by
``tools/dataset_converters/prepare_lits.py`` and, for on-the-fly
preprocessing of raw volumes, by
:class:`~svd_mm.datasets.transforms.LoadVolumeNifti`, so that the two give
the same arrays.
"""
import math
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'read_nifti', 'write_nifti', 'check_affine', 'affine_spacing',
    'make_geometry', 'same_geometry',
    'window_intensity', 'resample_slice_spacing', 'preprocess_ct_image',
    'preprocess_label', 'resample_to_geometry', 'save_prediction_nifti',
    'interpolation_weights', 'blend', 'resample_axis',
    'LITS_HU_WINDOW', 'DEEPLESION_HU_WINDOW', 'LIDC_RELEASE_WINDOW'
]

ArrayLike = Union[np.ndarray, Sequence]
Geometry = Dict[str, list]

NIFTI_SUFFIXES = ('.nii', '.nii.gz')

# The HU windows of the paper's datasets, named once: every default, loader
# and tool refers to these.
#: LiTS liver window (centre 25, width 450), ``prepare_lits.py``'s default.
LITS_HU_WINDOW = (-200., 250.)
#: DeepLesion slice stacks (3DCE / MP3D: [-1024, 1050] HU to [0, 255]).
DEEPLESION_HU_WINDOW = (-1024., 1050.)
#: The LIDC-IDRI release volumes read by ``LoadNoduleNpz`` (uint8 of
#: [-1024, 400] HU).
LIDC_RELEASE_WINDOW = (-1024., 400.)


def _nibabel():
    try:
        import nibabel
    except ImportError as e:  # pragma: no cover - nibabel is a dependency
        raise ImportError('Reading and writing NIfTI volumes needs nibabel: '
                          'pip install nibabel') from e
    return nibabel


def check_affine(affine: ArrayLike, name: str = 'affine') -> np.ndarray:
    """The affine as a finite, non-singular (4, 4) float64 array.

    Args:
        affine (array-like): (4, 4) map from the voxel index (i, j, k, 1)
            to RAS mm.
        name (str): Its name in the error message. Defaults to 'affine'.

    Returns:
        np.ndarray: The (4, 4) float64 affine.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ValueError(f'{name} must be a finite (4, 4) matrix, but got '
                         f'{affine.tolist() if affine.size < 32 else affine}')
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f'{name} is singular: {affine.tolist()}')
    return affine


def affine_spacing(affine: ArrayLike) -> Tuple[float, float, float]:
    """Voxel size along (D, H, W) in mm: the lengths of the affine's
    columns k, j, i."""
    norms = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3],
                           axis=0)
    return (float(norms[2]), float(norms[1]), float(norms[0]))


def make_geometry(affine: ArrayLike, shape: Sequence[int]) -> Geometry:
    """Build the geometry dict of a (D, H, W) grid.

    Args:
        affine (array-like): (4, 4) NIfTI affine (voxel (i, j, k) = (w, h, d)
            to RAS mm).
        shape (Sequence[int]): (D, H, W).

    Returns:
        dict: ``affine`` (nested list), ``shape`` (list of 3 ints) and
        ``spacing`` (list of 3 floats, (D, H, W) in mm).

    Examples:
        >>> import numpy as np
        >>> affine = np.diag([-0.7, -0.7, 5., 1.])
        >>> geometry = make_geometry(affine, (48, 64, 80))
        >>> geometry['shape'], geometry['spacing']
        ([48, 64, 80], [5.0, 0.7, 0.7])
    """
    affine = check_affine(affine)
    shape = [int(s) for s in shape]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f'shape must be three positive ints (D, H, W), but '
                         f'got {shape}')
    return dict(
        affine=affine.tolist(),
        shape=shape,
        spacing=list(affine_spacing(affine)))


def same_geometry(a: Geometry, b: Geometry, atol: float = 1e-3) -> bool:
    """Whether two geometries have the same shape and affines within
    ``atol`` (mm for the origin, mm per voxel for the axes)."""
    return list(a['shape']) == list(b['shape']) and np.allclose(
        np.asarray(a['affine']), np.asarray(b['affine']), rtol=0, atol=atol)


def read_nifti(path: str,
               check_finite: bool = True) -> Tuple[np.ndarray, Geometry]:
    """Read a 3D NIfTI volume as a (D, H, W) array and its geometry.

    The data are read with nibabel's ``dataobj`` (the header's
    ``scl_slope`` / ``scl_inter`` applied, the stored dtype kept otherwise)
    and transposed from (i, j, k) to (D, H, W) = (k, j, i). Trailing axes of
    size 1 (e.g. a (512, 512, 75, 1) file) are dropped.

    Args:
        path (str): A ``.nii`` or ``.nii.gz`` file.
        check_finite (bool): Whether to reject NaN / inf voxels.
            Defaults to True.

    Returns:
        tuple[np.ndarray, dict]: The C-contiguous (D, H, W) array and its
        geometry (:func:`make_geometry`).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is empty, not a NIfTI image, not 3D, has an
            axis of size 0 or (with ``check_finite``) non-finite voxels. The
            message names the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'NIfTI file {path} does not exist')
    if osp.getsize(path) == 0:
        raise ValueError(f'NIfTI file {path} is empty (0 bytes)')
    nib = _nibabel()
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise ValueError(f'Cannot read {path} as a NIfTI volume: '
                         f'{type(e).__name__}: {e}') from e
    shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f'{path} holds an array of shape {shape}; expected '
                         'a 3D volume (i, j, k)')
    if 0 in data.shape:
        raise ValueError(f'{path} holds an empty volume of shape {shape}')
    if check_finite and np.issubdtype(data.dtype, np.floating):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            raise ValueError(f'{path} has {bad} NaN or infinite voxels (of '
                             f'{data.size})')
    # always a copy: the data may be a memory map of the file, which must
    # not outlive this call (the file may be overwritten later)
    volume = np.array(data.transpose(2, 1, 0), order='C')
    del data
    try:
        geometry = make_geometry(img.affine, volume.shape)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from e
    return volume, geometry


def write_nifti(volume: np.ndarray,
                affine: ArrayLike,
                path: str,
                dtype: Optional[np.dtype] = None) -> str:
    """Write a (D, H, W) array as a NIfTI-1 file.

    The array is transposed to (i, j, k); the affine is written as both the
    qform and the sform (code 1, scanner) and the units are mm, so that the
    file reads back with the same affine.

    Args:
        volume (np.ndarray): (D, H, W) array; bool is written as uint8.
        affine (array-like): (4, 4) NIfTI affine of the grid.
        path (str): Output file, ending with ``.nii`` or ``.nii.gz``; its
            folder is created.
        dtype (np.dtype, optional): dtype to write. Defaults to None (that
            of ``volume``).

    Returns:
        str: ``path``.
    """
    if not str(path).endswith(NIFTI_SUFFIXES):
        raise ValueError(f'NIfTI path must end with .nii or .nii.gz, got '
                         f'{path}')
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f'write_nifti expects a (D, H, W) volume, but got '
                         f'shape {volume.shape} for {path}')
    if dtype is not None:
        volume = volume.astype(dtype, copy=False)
    elif volume.dtype == np.bool_:
        volume = volume.astype(np.uint8)
    affine = check_affine(affine)
    nib = _nibabel()
    img = nib.Nifti1Image(volume.transpose(2, 1, 0), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units('mm')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    nib.save(img, path)
    return path


def window_intensity(image: np.ndarray,
                     window: Sequence[float] = LITS_HU_WINDOW,
                     max_value: float = 255.) -> np.ndarray:
    """Clip intensities to a window and map it linearly onto
    ``[0, max_value]``, in float32.

    Args:
        image (np.ndarray): Intensities, e.g. CT in HU.
        window (Sequence[float]): (low, high). Defaults to (-200, 250), the
            liver window of LiTS (centre 25, width 450).
        max_value (float): Value of ``high``. Defaults to 255.

    Returns:
        np.ndarray: float32 array of the shape of ``image``.

    Examples:
        >>> import numpy as np
        >>> window_intensity(np.array([-1000, -200, 25, 250, 3000]))
        array([  0. ,   0. , 127.5, 255. , 255. ], dtype=float32)
    """
    low, high = (float(v) for v in window)
    if not low < high:
        raise ValueError(f'window must be (low, high) with low < high, got '
                         f'{tuple(window)}')
    out = np.clip(np.asarray(image, dtype=np.float32), low, high)
    out -= np.float32(low)
    out *= np.float32(max_value / (high - low))
    return out


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float values into an integer dtype (or just cast)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)


def interpolation_weights(
        positions: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The indices below and above fractional positions along an axis and
    the float32 weight of the one above.

    Where a position is a whole index, both indices are that index (weight
    0), so that no index beyond the last position is ever needed: a reader
    of slice files (e.g. DeepLesion's PNGs) loads only the slices it names.

    Args:
        positions (array-like): (N, ) fractional indices, already clamped
            to the indices that exist.

    Returns:
        tuple[np.ndarray]: ``lower`` and ``upper`` (int64) and ``weight``
        (float32), each (N, ).

    Examples:
        >>> lower, upper, weight = interpolation_weights([0., 1.25, 3.])
        >>> lower.tolist(), upper.tolist(), weight.tolist()
        ([0, 1, 3], [0, 2, 3], [0.0, 0.25, 0.0])
    """
    positions = np.asarray(positions, dtype=np.float64)
    lower = np.floor(positions).astype(np.int64)
    weight = (positions - lower).astype(np.float32)
    upper = np.where(weight > 0, lower + 1, lower)
    return lower, upper, weight


def blend(lower: np.ndarray,
          upper: np.ndarray,
          weight: np.ndarray,
          axis: int = 0) -> np.ndarray:
    """Linear interpolation ``lower * (1 - weight) + upper * weight`` in
    float32, ``weight`` (N, ) running along ``axis`` of the two arrays.

    Args:
        lower, upper (np.ndarray): Values at the indices below and above
            (:func:`interpolation_weights`), of the same shape.
        weight (np.ndarray): (N, ) float32 weights of ``upper``.
        axis (int): The axis of length N. Defaults to 0.

    Returns:
        np.ndarray: The float32 blend.
    """
    shape = [1] * np.ndim(lower)
    shape[axis] = len(weight)
    weight = np.asarray(weight, dtype=np.float32).reshape(shape)
    lower = np.asarray(lower).astype(np.float32, copy=False)
    upper = np.asarray(upper).astype(np.float32, copy=False)
    return lower * (1 - weight) + upper * weight


def resample_axis(array: np.ndarray,
                  positions: ArrayLike,
                  axis: int = 0,
                  order: int = 1,
                  outside: str = 'edge',
                  cval: float = 0,
                  value_fn: Optional[Callable] = None,
                  dtype: Optional[np.dtype] = None,
                  chunk_size: int = 32) -> np.ndarray:
    """Sample an array at fractional positions along one axis: the one
    slice interpolation of svd_mm.

    Index ``k`` of ``axis`` is the centre of voxel ``k``. Positions are
    clamped to [0, size - 1] and take the nearest index (``order=0``) or
    the :func:`blend` of the two around them (``order=1``, float32). The
    output is made ``chunk_size`` positions at a time, so the float
    intermediate stays small.

    Args:
        array (np.ndarray): Input of any number of dimensions.
        positions (array-like): (N, ) fractional indices along ``axis``.
        axis (int): The axis resampled. Defaults to 0.
        order (int): 0 (nearest, for labels) or 1 (linear). Defaults to 1.
        outside (str): ``'edge'``: positions outside the axis take the edge
            values; ``'constant'``: those more than half a voxel outside
            take ``cval``. Defaults to 'edge'.
        cval (float): Value outside for ``'constant'``. Defaults to 0.
        value_fn (Callable, optional): Applied to the sampled values before
            the blend (e.g. an intensity window), on float32 for
            ``order=1``. Defaults to None.
        dtype (np.dtype, optional): Output dtype; float values are rounded
            and clipped into integer dtypes. Defaults to None: float32 for
            ``order=1``, the input dtype for ``order=0``.
        chunk_size (int): Positions per chunk. Defaults to 32.

    Returns:
        np.ndarray: ``array`` with ``axis`` of length N.
    """
    if order not in (0, 1):
        raise ValueError(f'order must be 0 or 1, got {order}')
    if outside not in ('edge', 'constant'):
        raise ValueError(f"outside must be 'edge' or 'constant', got "
                         f'{outside!r}')
    array = np.asarray(array)
    axis = axis % array.ndim
    size = array.shape[axis]
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    if dtype is None:
        dtype = np.float32 if order == 1 else array.dtype
    dtype = np.dtype(dtype)
    out = np.empty(array.shape[:axis] + (len(positions), ) +
                   array.shape[axis + 1:], dtype=dtype)
    index = [slice(None)] * array.ndim
    clamped = np.clip(positions, 0, size - 1)
    for start in range(0, len(positions), chunk_size):
        pos = clamped[start:start + chunk_size]
        if order == 0:
            values = np.take(array, np.floor(pos + 0.5).astype(np.int64),
                             axis=axis)
            if value_fn is not None:
                values = value_fn(values)
        else:
            lower, upper, weight = interpolation_weights(pos)
            first = np.take(array, lower, axis=axis).astype(np.float32,
                                                            copy=False)
            second = np.take(array, upper, axis=axis).astype(np.float32,
                                                             copy=False)
            if value_fn is not None:
                first, second = value_fn(first), value_fn(second)
            values = blend(first, second, weight, axis)
        index[axis] = slice(start, start + len(pos))
        out[tuple(index)] = values if values.dtype == dtype else _cast(
            values, dtype)
    if outside == 'constant':
        index[axis] = (positions < -0.5) | (positions > size - 0.5)
        out[tuple(index)] = cval
    return out


def _slice_positions(geometry: Geometry,
                     spacing_z: float) -> Tuple[np.ndarray, Geometry]:
    """Slice positions (in old slice indices) and the geometry of the grid
    with ``spacing_z`` mm slices starting at the first old slice."""
    if not spacing_z > 0:
        raise ValueError(f'spacing_z must be > 0, got {spacing_z}')
    num_slices = geometry['shape'][0]
    old = geometry['spacing'][0]
    # the last new slice lies within the old extent (1e-6: float noise)
    new_num = int(math.floor((num_slices - 1) * old / spacing_z + 1e-6)) + 1
    positions = np.arange(new_num, dtype=np.float64) * (spacing_z / old)
    affine = np.asarray(geometry['affine'], dtype=np.float64).copy()
    affine[:3, 2] *= spacing_z / old
    return positions, make_geometry(affine,
                                    [new_num] + list(geometry['shape'][1:]))


def resample_slice_spacing(volume: np.ndarray,
                           geometry: Geometry,
                           spacing_z: float = 1.,
                           order: int = 1,
                           dtype: Optional[np.dtype] = None
                           ) -> Tuple[np.ndarray, Geometry]:
    """Resample a (D, H, W) volume along D to a slice spacing of
    ``spacing_z`` mm; H and W are unchanged.

    The first slice keeps its position; new slice ``k`` lies at
    ``k * spacing_z`` mm from it, for as many slices as fit in the old
    extent: ``floor((D - 1) * s / spacing_z) + 1`` slices for an old
    spacing ``s``. The new affine is the old one with its k column scaled
    by ``spacing_z / s``.

    Args:
        volume (np.ndarray): (D, H, W) array.
        geometry (dict): Its geometry (:func:`make_geometry`).
        spacing_z (float): New slice spacing in mm. Defaults to 1.
        order (int): 0 (nearest slice, for labels) or 1 (linear between
            the two nearest slices). Defaults to 1.
        dtype (np.dtype, optional): Output dtype; float values are rounded
            and clipped into integer dtypes. Defaults to None: float32 for
            ``order=1``, the input dtype for ``order=0``.

    Returns:
        tuple[np.ndarray, dict]: The resampled volume and its geometry.

    Examples:
        >>> import numpy as np
        >>> volume = np.arange(3, dtype=np.float32)[:, None, None] * 10
        >>> geometry = make_geometry(np.diag([1., 1., 2.5, 1.]), (3, 1, 1))
        >>> out, new = resample_slice_spacing(volume, geometry, 1.)
        >>> out.ravel(), new['shape'], new['spacing']
        (array([ 0.,  4.,  8., 12., 16., 20.], dtype=float32), [6, 1, 1], \
[1.0, 1.0, 1.0])
    """
    volume = np.asarray(volume)
    if tuple(volume.shape) != tuple(geometry['shape']):
        raise ValueError(f'volume of shape {volume.shape} does not match the '
                         f"geometry's shape {tuple(geometry['shape'])}")
    positions, new_geometry = _slice_positions(geometry, spacing_z)
    out = resample_axis(volume, positions, order=order, dtype=dtype)
    return out, new_geometry


def preprocess_ct_image(image: np.ndarray,
                        geometry: Geometry,
                        window: Sequence[float] = LITS_HU_WINDOW,
                        spacing_z: Optional[float] = 1.
                        ) -> Tuple[np.ndarray, Geometry]:
    """The LiTS image preprocessing: HU window, then 1 mm slices.

    Each voxel becomes ``(clip(HU, low, high) - low) / (high - low) * 255``
    (:func:`window_intensity`), the slices are interpolated linearly to
    ``spacing_z`` mm (:func:`resample_slice_spacing`) and the result is
    rounded to uint8: a step is 450 / 255 = 1.76 HU for the default window.

    Args:
        image (np.ndarray): (D, H, W) CT in HU.
        geometry (dict): Its geometry.
        window (Sequence[float]): HU window (low, high).
            Defaults to (-200, 250).
        spacing_z (float, optional): Slice spacing in mm; None keeps the
            slices. Defaults to 1.

    Returns:
        tuple[np.ndarray, dict]: uint8 (D', H, W) volume and its geometry.
    """
    def value_fn(values):
        return window_intensity(values, window)

    image = np.asarray(image)
    if tuple(image.shape) != tuple(geometry['shape']):
        raise ValueError(f'image of shape {image.shape} does not match the '
                         f"geometry's shape {tuple(geometry['shape'])}")
    if spacing_z is None:
        return _cast(value_fn(image), np.uint8), make_geometry(
            geometry['affine'], geometry['shape'])
    positions, new_geometry = _slice_positions(geometry, spacing_z)
    out = resample_axis(
        image, positions, value_fn=value_fn, dtype=np.uint8)
    return out, new_geometry


def preprocess_label(label: np.ndarray,
                     geometry: Geometry,
                     foreground_labels: Sequence[int] = (1, 2),
                     spacing_z: Optional[float] = 1.,
                     allowed_labels: Optional[Sequence[int]] = (0, 1, 2),
                     source: str = 'label'
                     ) -> Tuple[np.ndarray, Geometry]:
    """The LiTS label preprocessing: binary foreground, then the nearest
    slice of the ``spacing_z`` mm grid of :func:`preprocess_ct_image`.

    For liver segmentation the foreground is liver (1) and tumour (2):
    tumours are part of the liver.

    Args:
        label (np.ndarray): (D, H, W) integer labels.
        geometry (dict): Its geometry.
        foreground_labels (Sequence[int]): Labels that become 1.
            Defaults to (1, 2).
        spacing_z (float, optional): Slice spacing in mm; None keeps the
            slices. Defaults to 1.
        allowed_labels (Sequence[int], optional): Every voxel must hold one
            of these (catches an image passed as label); None allows any
            integer. Defaults to (0, 1, 2).
        source (str): Name of the label file for the error messages.
            Defaults to 'label'.

    Returns:
        tuple[np.ndarray, dict]: uint8 (D', H, W) mask of 0 / 1 and its
        geometry.
    """
    label = np.asarray(label)
    if tuple(label.shape) != tuple(geometry['shape']):
        raise ValueError(f'{source}: label of shape {label.shape} does not '
                         f"match the geometry's shape "
                         f"{tuple(geometry['shape'])}")
    if np.issubdtype(label.dtype, np.floating):
        if not np.array_equal(label, np.round(label)):
            raise ValueError(f'{source} holds non-integer label values, e.g. '
                             f'{label[label != np.round(label)][:3]}')
    if allowed_labels is not None:
        values = np.unique(label)
        unknown = np.setdiff1d(values, np.asarray(allowed_labels))
        if unknown.size:
            raise ValueError(
                f'{source} holds label values {unknown[:10].tolist()} '
                f'outside {list(allowed_labels)} (values present: '
                f'{values[:10].tolist()}); is it a label map?')
    mask = np.isin(label, np.asarray(foreground_labels)).astype(np.uint8)
    if spacing_z is None:
        return mask, make_geometry(geometry['affine'], geometry['shape'])
    return resample_slice_spacing(mask, geometry, spacing_z, order=0)


def resample_to_geometry(volume: np.ndarray,
                         src_geometry: Geometry,
                         dst_geometry: Geometry,
                         order: int = 0,
                         cval: float = 0) -> np.ndarray:
    """Resample a (D, H, W) volume from its grid onto another one.

    Each voxel of the destination grid takes the value of the source at the
    same world position, through the two affines: nearest voxel
    (``order=0``, for labels) or linear interpolation (``order=1``).
    Destination voxels more than half a voxel outside the source grid get
    ``cval``. When the two grids are axis-aligned with each other (a
    diagonal voxel-to-voxel map, as between a volume and its resampled
    version) this is done axis by axis; otherwise with
    ``scipy.ndimage.affine_transform``.

    Args:
        volume (np.ndarray): (D, H, W) array on ``src_geometry``.
        src_geometry (dict): Geometry of ``volume``.
        dst_geometry (dict): Geometry to resample onto.
        order (int): 0 or 1. Defaults to 0.
        cval (float): Value outside the source grid. Defaults to 0.

    Returns:
        np.ndarray: Array of ``dst_geometry['shape']``; the dtype of
        ``volume`` for ``order=0``, float32 for ``order=1``.
    """
    if order not in (0, 1):
        raise ValueError(f'order must be 0 or 1, got {order}')
    volume = np.asarray(volume)
    if tuple(volume.shape) != tuple(src_geometry['shape']):
        raise ValueError(f'volume of shape {volume.shape} does not match the '
                         f"source geometry's shape "
                         f"{tuple(src_geometry['shape'])}")
    src = check_affine(src_geometry['affine'], 'source affine')
    dst = check_affine(dst_geometry['affine'], 'destination affine')
    # destination (i, j, k) -> source (i, j, k), then in (d, h, w) order
    voxel_map = np.linalg.solve(src, dst)
    reverse = np.eye(4)[[2, 1, 0, 3]]
    voxel_map = reverse @ voxel_map @ reverse
    linear, offset = voxel_map[:3, :3], voxel_map[:3, 3]
    dst_shape = tuple(int(s) for s in dst_geometry['shape'])
    off_diagonal = linear - np.diag(np.diag(linear))
    if np.abs(off_diagonal).max() < 1e-6:
        out = volume
        for axis in range(3):
            coords = linear[axis, axis] * np.arange(dst_shape[axis]) + \
                offset[axis]
            # snap float noise so that exact voxel positions stay exact
            coords = np.where(
                np.abs(coords - np.round(coords)) < 1e-6, np.round(coords),
                coords)
            out = resample_axis(
                out, coords, axis, order, outside='constant', cval=cval)
        return out
    from scipy import ndimage
    source = volume if order == 0 else volume.astype(np.float32)
    return ndimage.affine_transform(
        source,
        linear,
        offset=offset,
        output_shape=dst_shape,
        order=order,
        mode='constant',
        cval=cval)


def save_prediction_nifti(pred: np.ndarray,
                          geometry: Geometry,
                          path: str,
                          original_geometry: Optional[Geometry] = None,
                          dtype: np.dtype = np.uint8) -> np.ndarray:
    """Write a label prediction as NIfTI, on the original grid.

    The prediction, made on the grid of ``geometry`` (e.g. the 1 mm slices
    of a prepared LiTS volume), is resampled with the nearest voxel onto
    ``original_geometry`` (the grid of the raw volume) and written with the
    original affine, so that it overlays the raw volume in any viewer and
    can be compared with the raw label voxel by voxel.

    Args:
        pred (np.ndarray | torch.Tensor): (D, H, W) or (1, D, H, W) labels.
        geometry (dict): Grid of ``pred``.
        path (str): Output ``.nii`` / ``.nii.gz`` file.
        original_geometry (dict, optional): Grid to write on. Defaults to
            None (``geometry``).
        dtype (np.dtype): dtype written. Defaults to np.uint8.

    Returns:
        np.ndarray: The (D, H, W) labels written, on the original grid.
    """
    if hasattr(pred, 'detach'):
        pred = pred.detach().cpu().numpy()
    pred = np.asarray(pred)
    if pred.ndim == 4 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.ndim != 3:
        raise ValueError(f'pred must be (D, H, W) or (1, D, H, W), but got '
                         f'shape {pred.shape} for {path}')
    if original_geometry is None:
        original_geometry = geometry
    out = pred
    if not same_geometry(geometry, original_geometry, atol=1e-6):
        out = resample_to_geometry(pred, geometry, original_geometry, order=0)
    out = out.astype(dtype, copy=False)
    write_nifti(out, original_geometry['affine'], path)
    return out
