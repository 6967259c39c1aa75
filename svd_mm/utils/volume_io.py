"""Volumes in svd_mm's (D, H, W) layout with their geometry: NIfTI I/O,
CT preprocessing, resampling and writing predictions back onto the original
grid (other formats: :mod:`~svd_mm.utils.medical_io`).

Conventions:

- **Array layout.** A NIfTI file stores its data indexed (i, j, k); svd_mm
  works on (D, H, W) = (z, y, x) arrays with ``D = k`` (the slice axis),
  ``H = j`` and ``W = i``, i.e. the NIfTI data transposed by ``(2, 1, 0)``
  (what SimpleITK's ``GetArrayFromImage`` returns as well).
- **Volume.** One in-memory type, :class:`Volume`: the (D, H, W) array and
  its (4, 4) affine, which maps the voxel index (i, j, k) = (w, h, d) to
  RAS+ world coordinates in mm (nibabel's ``img.affine``); ITK (hence
  NRRD, MetaImage and DICOM) works in LPS+, the DICOM patient system:
  ``ras = LPS_TO_RAS @ lps``. Spacing, origin and direction are derived
  from the affine, so they never disagree with it. Every function here
  takes and returns Volumes.
- **Geometry.** The JSON form of a Volume's grid (:attr:`Volume.geometry`,
  :func:`make_geometry`), kept in meta files and pipeline metainfo
  (``original_geometry``) and naming a target grid: ``affine`` (4 lists of
  4 floats), ``shape`` ((D, H, W) ints) and ``spacing`` (voxel size along
  (D, H, W) in mm, the lengths of the affine's columns k, j, i).
- **Resampling.** One function samples any axis at fractional positions
  (voxel centres at integer indices), :func:`resample_axis`;
  :func:`resample_slice_spacing` and :func:`resample_to_geometry` (which
  writes predictions back onto the original grid,
  :func:`save_prediction_nifti`) are built on it.

The LiTS preprocessing (:func:`preprocess_ct_image`, :func:`preprocess_label`)
serves both ``tools/dataset_converters/prepare_lits.py`` and
:class:`~svd_mm.datasets.transforms.LoadVolumeNifti`: the same arrays.
"""
import math
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple, Union

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine, voxel_sizes

__all__ = [
    'Volume', 'LPS_TO_RAS', 'read_nifti', 'write_nifti', 'check_affine',
    'make_geometry', 'same_geometry', 'load_nifti_image',
    'check_finite_voxels', 'reading', 'atomic_output',
    'window_intensity', 'resample_slice_spacing', 'preprocess_ct_image',
    'preprocess_label', 'resample_to_geometry', 'save_prediction_nifti',
    'interpolation_weights', 'blend', 'resample_axis',
    'LITS_HU_WINDOW', 'DEEPLESION_HU_WINDOW', 'LIDC_RELEASE_WINDOW'
]

ArrayLike = Union[np.ndarray, Sequence]
Geometry = Dict[str, list]

NIFTI_SUFFIXES = ('.nii', '.nii.gz')

#: ``ras = LPS_TO_RAS @ lps`` (and back: the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1., -1., 1., 1.])

# The HU windows of the paper's datasets, named once: every default, loader
# and tool refers to these.
#: LiTS liver window (centre 25, width 450), ``prepare_lits.py``'s default.
LITS_HU_WINDOW = (-200., 250.)
#: DeepLesion slice stacks (3DCE / MP3D: [-1024, 1050] HU to [0, 255]).
DEEPLESION_HU_WINDOW = (-1024., 1050.)
#: The LIDC-IDRI release volumes read by ``LoadNoduleNpz`` (uint8 of
#: [-1024, 400] HU).
LIDC_RELEASE_WINDOW = (-1024., 400.)


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
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(
            np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f'{name} must be a finite, non-singular (4, 4) '
                         'matrix, but got '
                         f'{affine.tolist() if affine.size < 32 else affine}')
    return affine


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
    return dict(affine=affine.tolist(), shape=shape,
                spacing=voxel_sizes(affine)[::-1].tolist())


def _grid(geometry: Geometry,
          name: str = 'geometry') -> Tuple[np.ndarray, Tuple[int, ...]]:
    """The checked (affine, shape) of a geometry dict: the one place where
    the JSON form becomes a grid again."""
    if not isinstance(geometry, dict) or {'affine', 'shape'} - set(geometry):
        raise TypeError(f"{name} must be a dict with 'affine' and 'shape' "
                        f'(Volume.geometry), but got {str(geometry)[:200]}')
    affine = check_affine(geometry['affine'], f'{name} affine')
    return affine, tuple(make_geometry(affine, geometry['shape'])['shape'])


def same_geometry(a: Geometry, b: Geometry, atol: float = 1e-3) -> bool:
    """Whether two geometries have the same shape and affines within
    ``atol`` (mm for the origin, mm per voxel for the axes)."""
    (affine_a, shape_a), (affine_b, shape_b) = _grid(a), _grid(b)
    return shape_a == shape_b and np.allclose(
        affine_a, affine_b, rtol=0, atol=atol)


@dataclass
class Volume:
    """A 3D image and its geometry.

    Args:
        array (np.ndarray): (D, H, W) = (z, y, x) voxel values, float32 when
            read by :func:`~svd_mm.utils.medical_io.read_volume` (HU for
            CT), the stored dtype when read by :func:`read_nifti`.
        affine (np.ndarray): (4, 4) map from the voxel index
            (i, j, k, 1) = (w, h, d, 1) to RAS millimetres.
        source (str): The file or folder read. Defaults to ''.
        format (str): ``'nifti'``, ``'nrrd'``, ``'mhd'``, ``'dicom'`` or
            '' for a volume made in memory. Defaults to ''.
        meta (dict): Format details (e.g. the DICOM ``series_uid``, the
            stored dtype). Defaults to an empty dict.

    Examples:
        >>> import numpy as np
        >>> vol = Volume(np.zeros((4, 5, 6), np.float32),
        ...              np.diag([-0.7, -0.7, 5., 1.]))
        >>> vol.shape, vol.spacing
        ((4, 5, 6), (5.0, 0.7, 0.7))
        >>> vol.lps_affine[:3, :3].diagonal().tolist()
        [0.7, 0.7, 5.0]
    """

    array: np.ndarray
    affine: np.ndarray
    source: str = ''
    format: str = ''
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        source = self.source or '<memory>'
        if self.array.ndim != 3 or 0 in self.array.shape:
            raise ValueError(f'Volume needs a non-empty (D, H, W) array, but '
                             f'got shape {self.array.shape} from {source}')
        self.affine = check_affine(self.affine, f'{source}: Volume affine')

    @property
    def shape(self) -> Tuple[int, int, int]:
        """tuple[int]: (D, H, W)."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing(self) -> Tuple[float, float, float]:
        """tuple[float]: Voxel size along (D, H, W) in mm."""
        return tuple(voxel_sizes(self.affine)[::-1].tolist())

    @property
    def origin(self) -> np.ndarray:
        """np.ndarray: (3, ) RAS mm of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """np.ndarray: (3, 3) unit RAS vectors of the axes i, j, k (as
        columns)."""
        return self.affine[:3, :3] / voxel_sizes(self.affine)

    @property
    def lps_affine(self) -> np.ndarray:
        """np.ndarray: (4, 4) map from (i, j, k, 1) to LPS mm (ITK /
        DICOM)."""
        return LPS_TO_RAS @ self.affine

    @property
    def geometry(self) -> Geometry:
        """dict: The JSON form of the grid (:func:`make_geometry`)."""
        return make_geometry(self.affine, self.shape)

    def with_array(self,
                   array: np.ndarray,
                   affine: Optional[ArrayLike] = None) -> 'Volume':
        """A volume of the same source with another array, on ``affine``
        (defaults to None: this volume's)."""
        return Volume(array, self.affine if affine is None else affine,
                      self.source, self.format, dict(self.meta))

    def dhw_to_ras(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 3) voxel positions (d, h, w) to (N, 3) RAS mm.

        Args:
            points (np.ndarray): (N, 3) or (3, ) fractional voxel indices in
                (D, H, W) order; integer values are voxel centres.

        Returns:
            np.ndarray: RAS coordinates of the same shape.
        """
        return apply_affine(self.affine,
                            np.asarray(points, dtype=np.float64)[..., ::-1])

    def __repr__(self) -> str:
        spacing = ', '.join(f'{s:g}' for s in self.spacing)
        return (f'{self.__class__.__name__}(shape={self.shape}, '
                f'spacing=({spacing}), format={self.format!r}, '
                f'source={self.source!r})')


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Turn a reader's error in the block (not a MemoryError) into one
    naming ``path``: the error wrapper of the nibabel and SimpleITK readers.

    Args:
        path (str): The file or folder being read.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: Otherwise, with the error's type and gist (of
            SimpleITK's many lines, those from the first ``ERROR`` on).
    """
    try:
        yield
    except (FileNotFoundError, MemoryError):
        raise
    except Exception as e:
        if not osp.exists(path):
            raise FileNotFoundError(f'{path} does not exist') from e
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((i for i, ln in enumerate(lines) if 'ERROR' in ln),
                     len(lines) - 1)
        raise ValueError(
            f'Cannot read {path}: the file is truncated, corrupt or not a '
            f'supported volume ({type(e).__name__}: '
            f'{" ".join(lines[first:])})') from e


@contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """A temporary path to write ``path`` to, in a new folder beside it.

    When the block ends, the files written there (e.g. a MetaImage header
    and its data file) are moved beside ``path``, ``path`` last; on an error
    none is. So no half-written file ever has a final name.

    Args:
        path (str): The file to write; its folder is created.

    Yields:
        str: The temporary path (the same file name as ``path``).
    """
    folder, name = osp.split(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.write-', dir=folder)
    try:
        yield osp.join(tmp, name)
        for file in sorted(os.listdir(tmp), key=lambda n: n == name):
            os.replace(osp.join(tmp, file), osp.join(folder, file))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_nifti_image(path: str) -> nib.Nifti1Image:
    """nibabel's image of a NIfTI file, its header read and its voxels not.

    Args:
        path (str): A ``.nii`` or ``.nii.gz`` file.

    Returns:
        nibabel.Nifti1Image: The image (``dataobj`` reads the voxels).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is empty or not a NIfTI image; the message
            names the file.
    """
    if osp.isfile(path) and osp.getsize(path) == 0:
        raise ValueError(f'NIfTI file {path} is empty (0 bytes)')
    with reading(path):
        return nib.load(path)


def check_finite_voxels(array: np.ndarray, path: str,
                        part: str = '') -> np.ndarray:
    """Reject NaN / inf voxels of a float array read from ``path``.

    Args:
        array (np.ndarray): Voxels (integer arrays pass unchecked).
        path (str): Their file, named in the error.
        part (str): Appended to the count in the error, e.g. ``' read'``
            for a box of the file. Defaults to ''.

    Returns:
        np.ndarray: ``array``.
    """
    if np.issubdtype(array.dtype, np.floating):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(f'{path} has {bad} NaN or infinite voxels (of '
                             f'{array.size}{part})')
    return array


def _check_3d(data: np.ndarray, path: str) -> np.ndarray:
    """The (i, j, k, ...) voxels read from ``path`` without their trailing
    axes of size 1, checked to be a 3D volume of finite values."""
    shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3 or 0 in data.shape:
        raise ValueError(f'{path} holds an array of shape {shape}; expected '
                         'a 3D volume (i, j, k) without empty axes')
    return check_finite_voxels(data, path)


def read_nifti(path: str) -> Volume:
    """Read a 3D NIfTI file as a (D, H, W) :class:`Volume`.

    The data are read with nibabel's ``dataobj`` (the header's
    ``scl_slope`` / ``scl_inter`` applied, the stored dtype kept otherwise),
    checked to be 3D (trailing axes of size 1 dropped) and transposed from
    (i, j, k) to (D, H, W) = (k, j, i).

    Args:
        path (str): A ``.nii`` or ``.nii.gz`` file.

    Returns:
        Volume: The C-contiguous (D, H, W) array (the stored dtype) and the
        file's affine; ``source`` is ``path``, ``format`` is ``'nifti'``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is empty, not a NIfTI image, not 3D, has an
            axis of size 0 or non-finite voxels. The message names the file.
    """
    img = load_nifti_image(path)
    with reading(path):
        data = np.asanyarray(img.dataobj)
    data = _check_3d(data, path)
    # always a copy: the data may be a memory map of the file, which must
    # not outlive this call (the file may be overwritten later)
    return Volume(np.array(data.transpose(2, 1, 0), order='C'), img.affine,
                  path, 'nifti')


def _writable(array: np.ndarray, dtype: Optional[np.dtype]) -> np.ndarray:
    """``array`` in ``dtype`` (None: its own), bool as uint8."""
    array = np.asarray(array, dtype=dtype)
    return array.astype(np.uint8) if array.dtype == np.bool_ else array


def write_nifti(volume: Volume,
                path: str,
                dtype: Optional[np.dtype] = None) -> str:
    """Write a :class:`Volume` as a NIfTI-1 file, atomically
    (:func:`atomic_output`).

    The array is transposed to (i, j, k); the affine is written as both the
    qform and the sform (code 1, scanner) and the units are mm, so that the
    file reads back with the same affine.

    Args:
        volume (Volume): The volume; a bool array is written as uint8.
        path (str): Output file, ending with ``.nii`` or ``.nii.gz``; its
            folder is created.
        dtype (np.dtype, optional): dtype to write. Defaults to None (that
            of ``volume.array``).

    Returns:
        str: ``path``.
    """
    if not str(path).endswith(NIFTI_SUFFIXES):
        raise ValueError(f'NIfTI path must end with .nii or .nii.gz, got '
                         f'{path}')
    if not isinstance(volume, Volume):
        raise TypeError(f'write_nifti writes a Volume, but got '
                        f'{type(volume).__name__} for {path}')
    img = nib.Nifti1Image(
        _writable(volume.array, dtype).transpose(2, 1, 0), volume.affine)
    img.set_qform(volume.affine, code=1)
    img.set_sform(volume.affine, code=1)
    img.header.set_xyzt_units('mm')
    with atomic_output(path) as tmp:
        nib.save(img, tmp)
    return path


def window_intensity(image: np.ndarray,
                     window: Sequence[float] = LITS_HU_WINDOW) -> np.ndarray:
    """Clip intensities to a window and map it linearly onto [0, 255], in
    float32.

    Args:
        image (np.ndarray): Intensities, e.g. CT in HU.
        window (Sequence[float]): (low, high). Defaults to (-200, 250), the
            liver window of LiTS (centre 25, width 450).

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
    out *= np.float32(255. / (high - low))
    return out


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float values into an integer dtype (or just cast)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)


def interpolation_weights(
        positions: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The indices below and above fractional positions and the float32
    weight of the one above; both are the position itself where it is
    whole, so a reader of slice files (DeepLesion's PNGs) reads only these.

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
    """Sample an array at fractional positions along one axis (index ``k``
    is the centre of voxel ``k``): the one slice interpolation of svd_mm.

    Positions are clamped to [0, size - 1] and take the nearest index
    (``order=0``) or the :func:`blend` of the two around them (``order=1``),
    ``chunk_size`` positions at a time to keep the float intermediate small.

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
    if value_fn is None and dtype == array.dtype and np.array_equal(
            positions, np.arange(size)):
        return array.copy()  # every position is its voxel: nothing to do
    out = np.empty(array.shape[:axis] + (len(positions), ) +
                   array.shape[axis + 1:], dtype=dtype)
    # views with the resampled axis first
    source, target = np.moveaxis(array, axis, 0), np.moveaxis(out, axis, 0)
    clamped = np.clip(positions, 0, size - 1)
    for start in range(0, len(positions), chunk_size):
        pos = clamped[start:start + chunk_size]
        if order == 0:
            values = source[np.floor(pos + 0.5).astype(np.int64)]
            if value_fn is not None:
                values = value_fn(values)
        else:
            lower, upper, weight = interpolation_weights(pos)
            first, second = (source[idx].astype(np.float32, copy=False)
                             for idx in (lower, upper))
            if value_fn is not None:
                first, second = value_fn(first), value_fn(second)
            values = blend(first, second, weight)
        target[start:start + len(pos)] = values if values.dtype == dtype \
            else _cast(values, dtype)
    if outside == 'constant':
        target[(positions < -0.5) | (positions > size - 0.5)] = cval
    return out


def resample_slice_spacing(volume: Volume,
                           spacing_z: float = 1.,
                           order: int = 1,
                           dtype: Optional[np.dtype] = None,
                           value_fn: Optional[Callable] = None) -> Volume:
    """Resample a volume along D to a slice spacing of ``spacing_z`` mm; H
    and W are unchanged.

    The first slice keeps its position; new slice ``k`` lies at
    ``k * spacing_z`` mm from it, for as many slices as fit in the old
    extent: ``floor((D - 1) * s / spacing_z) + 1`` slices for an old
    spacing ``s``. The new affine is the old one with its k column scaled
    by ``spacing_z / s``.

    Args:
        volume (Volume): The volume.
        spacing_z (float): New slice spacing in mm. Defaults to 1.
        order (int): 0 (nearest slice, for labels) or 1 (linear between
            the two nearest slices). Defaults to 1.
        dtype (np.dtype, optional): Output dtype, see
            :func:`resample_axis`. Defaults to None.
        value_fn (callable, optional): Applied to the source slices before
            they are blended, see :func:`resample_axis`. Defaults to None.

    Returns:
        Volume: The resampled volume.

    Examples:
        >>> import numpy as np
        >>> volume = Volume(np.arange(3.)[:, None, None] * 10,
        ...                 np.diag([1., 1., 2.5, 1.]))
        >>> out = resample_slice_spacing(volume, 1.)
        >>> out.array.ravel(), out.shape, out.spacing
        (array([ 0.,  4.,  8., 12., 16., 20.], dtype=float32), (6, 1, 1), \
(1.0, 1.0, 1.0))
    """
    if not spacing_z > 0:
        raise ValueError(f'spacing_z must be > 0, got {spacing_z}')
    scale = spacing_z / volume.spacing[0]
    # the last new slice lies within the old extent (1e-6: float noise)
    positions = np.arange(
        math.floor((volume.shape[0] - 1) / scale + 1e-6) + 1) * scale
    affine = volume.affine.copy()
    affine[:3, 2] *= scale
    return volume.with_array(
        resample_axis(volume.array, positions, order=order,
                      value_fn=value_fn, dtype=dtype), affine)


def preprocess_ct_image(image: Volume,
                        window: Sequence[float] = LITS_HU_WINDOW,
                        spacing_z: Optional[float] = 1.) -> Volume:
    """The LiTS image preprocessing: HU window, then 1 mm slices.

    Each voxel becomes ``(clip(HU, low, high) - low) / (high - low) * 255``
    (:func:`window_intensity`), the slices are interpolated linearly to
    ``spacing_z`` mm (:func:`resample_slice_spacing`) and the result is
    rounded to uint8: a step is 450 / 255 = 1.76 HU for the default window.

    Args:
        image (Volume): CT in HU.
        window (Sequence[float]): HU window (low, high).
            Defaults to (-200, 250).
        spacing_z (float, optional): Slice spacing in mm; None keeps the
            slices. Defaults to 1.

    Returns:
        Volume: uint8 (D', H, W) volume.
    """
    if spacing_z is None:
        spacing_z = image.spacing[0]  # the window only
    return resample_slice_spacing(
        image, spacing_z, dtype=np.uint8,
        value_fn=partial(window_intensity, window=window))


def preprocess_label(label: Volume,
                     foreground_labels: Sequence[int] = (1, 2),
                     spacing_z: Optional[float] = 1.,
                     allowed_labels: Optional[Sequence[int]] = (0, 1, 2)
                     ) -> Volume:
    """The LiTS label preprocessing: binary foreground, then the nearest
    slice of the ``spacing_z`` mm grid of :func:`preprocess_ct_image`.

    For liver segmentation the foreground is liver (1) and tumour (2):
    tumours are part of the liver.

    Args:
        label (Volume): Integer labels; its ``source`` names the file in
            the error messages.
        foreground_labels (Sequence[int]): Labels that become 1.
            Defaults to (1, 2).
        spacing_z (float, optional): Slice spacing in mm; None keeps the
            slices. Defaults to 1.
        allowed_labels (Sequence[int], optional): Every voxel must hold one
            of these (catches an image passed as label); None allows any
            integer. Defaults to (0, 1, 2).

    Returns:
        Volume: uint8 (D', H, W) mask of 0 / 1.
    """
    array, source = label.array, label.source or 'label'
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(
            array, np.round(array)):
        raise ValueError(f'{source} holds non-integer label values, e.g. '
                         f'{array[array != np.round(array)][:3]}')
    if allowed_labels is not None:
        values = np.unique(array)
        unknown = np.setdiff1d(values, np.asarray(allowed_labels))
        if unknown.size:
            raise ValueError(
                f'{source} holds label values {unknown[:10].tolist()} '
                f'outside {list(allowed_labels)} (values present: '
                f'{values[:10].tolist()}); is it a label map?')
    mask = label.with_array(
        np.isin(array, np.asarray(foreground_labels)).astype(np.uint8))
    if spacing_z is None:
        return mask
    return resample_slice_spacing(mask, spacing_z, order=0)


def resample_to_geometry(volume: Volume,
                         geometry: Geometry,
                         order: int = 0,
                         cval: float = 0) -> Volume:
    """Resample a volume from its grid onto another one.

    Each voxel of the destination grid takes the value of the source at the
    same world position, through the two affines. Grids axis-aligned with
    each other (as a volume and its resampled version) are mapped axis by
    axis (:func:`resample_axis`), others with
    ``scipy.ndimage.affine_transform``.

    Args:
        volume (Volume): The volume.
        geometry (dict): The grid to resample onto (e.g. the
            :attr:`Volume.geometry` of the raw volume, or the one kept in a
            meta json).
        order (int): 0 (nearest voxel, for labels) or 1 (linear).
            Defaults to 0.
        cval (float): Value of destination voxels more than half a voxel
            outside the source grid. Defaults to 0.

    Returns:
        Volume: The volume on ``geometry``; the dtype of ``volume.array``
        for ``order=0``, float32 for ``order=1``.
    """
    if order not in (0, 1):
        raise ValueError(f'order must be 0 or 1, got {order}')
    dst, dst_shape = _grid(geometry, 'destination geometry')
    # destination (i, j, k) -> source (i, j, k), then in (d, h, w) order
    dhw = [2, 1, 0, 3]
    voxel_map = np.linalg.solve(volume.affine, dst)[dhw][:, dhw]
    linear, offset = voxel_map[:3, :3], voxel_map[:3, 3]
    if np.allclose(linear, np.diag(np.diag(linear)), rtol=0, atol=1e-6):
        out = volume.array
        for axis in range(3):
            coords = linear[axis, axis] * np.arange(dst_shape[axis]) + \
                offset[axis]
            # snap float noise so that exact voxel positions stay exact
            whole = np.round(coords)
            coords = np.where(abs(coords - whole) < 1e-6, whole, coords)
            out = resample_axis(
                out, coords, axis, order, outside='constant', cval=cval)
        return volume.with_array(out, dst)
    from scipy import ndimage
    source = volume.array if order == 0 else volume.array.astype(np.float32)
    return volume.with_array(
        ndimage.affine_transform(
            source, linear, offset, dst_shape, order=order, cval=cval), dst)


def save_prediction_nifti(pred: Volume,
                          path: str,
                          original_geometry: Optional[Geometry] = None
                          ) -> Volume:
    """Write a label prediction as uint8 NIfTI, on the original grid.

    The prediction, made on its own grid (e.g. the 1 mm slices of a
    prepared LiTS volume), is resampled with the nearest voxel onto
    ``original_geometry`` (the grid of the raw volume) and written with the
    original affine, so that it overlays the raw volume in any viewer and
    can be compared with the raw label voxel by voxel.

    Args:
        pred (Volume): (D, H, W) labels on the grid they were predicted on.
        path (str): Output ``.nii`` / ``.nii.gz`` file.
        original_geometry (dict, optional): Grid to write on. Defaults to
            None (that of ``pred``).

    Returns:
        Volume: The labels written, on the original grid.
    """
    if original_geometry is not None and not same_geometry(
            pred.geometry, original_geometry, atol=1e-6):
        pred = resample_to_geometry(pred, original_geometry, order=0)
    out = pred.with_array(pred.array.astype(np.uint8, copy=False))
    write_nifti(out, path)
    return out
