"""Read a user's CT / MR volume from NIfTI, NRRD, MetaImage or a DICOM
series into one :class:`Volume`, and write masks back in its geometry.

Conventions (those of :mod:`svd_mm.utils.volume_io`, so that a
:class:`Volume`'s :attr:`~Volume.geometry` works with its functions):

- **Array.** ``array`` is (D, H, W) = (z, y, x) = (k, j, i) float32: the
  slice axis first and the in-plane column index ``i`` last (the layout of
  ``SimpleITK.GetArrayFromImage``). For CT the values are Hounsfield units
  (DICOM ``RescaleSlope`` / ``RescaleIntercept`` applied).
- **World coordinates: RAS.** ``affine`` maps the voxel index
  (i, j, k, 1) = (w, h, d, 1) to **RAS+** millimetres (x grows towards the
  patient's right, y towards anterior, z towards superior), as nibabel's
  NIfTI affine does. NRRD files in ``left-posterior-superior`` space,
  MetaImage files and DICOM series (all LPS+, the ITK / DICOM patient
  coordinate system) are converted with ``ras = LPS_TO_RAS @ lps``,
  ``LPS_TO_RAS = diag(-1, -1, 1, 1)`` (its own inverse);
  :attr:`Volume.lps_affine` gives the LPS affine back.
- **Spacing, origin, direction** are derived from the affine, so they can
  never disagree with it: ``spacing`` (D, H, W) in mm are the lengths of
  the affine's columns k, j, i; ``origin`` is the RAS position of the centre
  of voxel (0, 0, 0); ``direction`` is the (3, 3) matrix of unit column
  vectors of the axes i, j, k in RAS.

Formats read by :func:`read_volume`:

- NIfTI (``.nii``, ``.nii.gz``) through
  :func:`svd_mm.utils.volume_io.read_nifti` (nibabel);
- NRRD (``.nrrd``, ``.nhdr``) through pynrrd, spaces RAS / LPS / LAS;
- MetaImage (``.mhd`` + raw data file, or ``.mha``) with a reader of its own
  (SimpleITK is not needed): ``NDims``, ``DimSize``, ``ElementSpacing``,
  ``Offset`` (or ``Origin`` / ``Position``), ``TransformMatrix`` (or
  ``Rotation`` / ``Orientation``; the three numbers ``3 a .. 3 a + 2`` are
  the direction of axis ``a``, as ITK reads them), ``ElementType``
  (``MET_UCHAR``, ``MET_CHAR``, ``MET_USHORT``, ``MET_SHORT``, ``MET_UINT``,
  ``MET_INT``, ``MET_FLOAT``, ``MET_DOUBLE``), ``ElementByteOrderMSB``,
  ``CompressedData`` (zlib), ``HeaderSize`` and ``ElementDataFile``
  (``LOCAL`` or one file next to the header);
- a DICOM series: a folder of one series' slice files, or a single slice
  file, through pydicom (see :func:`read_dicom_series`).

Masks are written as NIfTI with the input's affine (:func:`write_mask`), so
that they overlay the input in any viewer, whatever its format was.
"""
import os
import os.path as osp
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .volume_io import make_geometry, read_nifti, write_nifti

__all__ = [
    'Volume', 'LPS_TO_RAS', 'read_volume', 'read_nifti_volume', 'read_nrrd',
    'read_mhd', 'read_dicom_series', 'write_volume', 'write_mhd',
    'write_nrrd', 'write_mask', 'volume_stem', 'SUPPORTED_FORMATS'
]

#: ``ras = LPS_TO_RAS @ lps`` (and back: the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1., -1., 1., 1.])

#: File suffixes of each format (a folder is a DICOM series).
SUPPORTED_FORMATS = {
    'nifti': ('.nii', '.nii.gz'),
    'nrrd': ('.nrrd', '.nhdr'),
    'mhd': ('.mhd', '.mha'),
    'dicom': ('.dcm', '<folder>'),
}

#: NRRD ``space`` values -> matrix taking that space to RAS.
_NRRD_SPACES = {
    'right-anterior-superior': np.diag([1., 1., 1., 1.]),
    'RAS': np.diag([1., 1., 1., 1.]),
    'left-posterior-superior': LPS_TO_RAS,
    'LPS': LPS_TO_RAS,
    'left-anterior-superior': np.diag([-1., 1., 1., 1.]),
    'LAS': np.diag([-1., 1., 1., 1.]),
}

#: MetaImage element types -> numpy dtypes (native byte order).
MET_TYPES = {
    'MET_UCHAR': np.uint8,
    'MET_CHAR': np.int8,
    'MET_USHORT': np.uint16,
    'MET_SHORT': np.int16,
    'MET_UINT': np.uint32,
    'MET_INT': np.int32,
    'MET_FLOAT': np.float32,
    'MET_DOUBLE': np.float64,
}


@dataclass
class Volume:
    """A 3D image and its geometry.

    Args:
        array (np.ndarray): (D, H, W) = (z, y, x) voxel values, float32 when
            read by :func:`read_volume` (HU for CT).
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
        if self.array.ndim != 3 or 0 in self.array.shape:
            raise ValueError(
                f'Volume needs a non-empty (D, H, W) array, but got shape '
                f'{self.array.shape} from {self.source or "<memory>"}')
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(
                np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError(
                f'Volume needs a finite, non-singular (4, 4) affine, but got '
                f'{affine.tolist()} from {self.source or "<memory>"}')
        self.affine = affine

    @property
    def shape(self) -> Tuple[int, int, int]:
        """tuple[int]: (D, H, W)."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing(self) -> Tuple[float, float, float]:
        """tuple[float]: Voxel size along (D, H, W) in mm."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)  # i, j, k
        return (float(norms[2]), float(norms[1]), float(norms[0]))

    @property
    def origin(self) -> np.ndarray:
        """np.ndarray: (3, ) RAS mm of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """np.ndarray: (3, 3) unit RAS vectors of the axes i, j, k (as
        columns)."""
        linear = self.affine[:3, :3]
        return linear / np.linalg.norm(linear, axis=0, keepdims=True)

    @property
    def lps_affine(self) -> np.ndarray:
        """np.ndarray: (4, 4) map from (i, j, k, 1) to LPS mm (ITK /
        DICOM)."""
        return LPS_TO_RAS @ self.affine

    @property
    def geometry(self) -> Dict[str, list]:
        """dict: The geometry of :mod:`svd_mm.utils.volume_io`
        (``affine``, ``shape``, ``spacing``)."""
        return make_geometry(self.affine, self.shape)

    def dhw_to_ras(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 3) voxel positions (d, h, w) to (N, 3) RAS mm.

        Args:
            points (np.ndarray): (N, 3) or (3, ) fractional voxel indices in
                (D, H, W) order; integer values are voxel centres.

        Returns:
            np.ndarray: RAS coordinates of the same shape.
        """
        points = np.asarray(points, dtype=np.float64)
        ijk = points[..., ::-1]
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def __repr__(self) -> str:
        spacing = ', '.join(f'{s:g}' for s in self.spacing)
        return (f'{self.__class__.__name__}(shape={self.shape}, '
                f'spacing=({spacing}), format={self.format!r}, '
                f'source={self.source!r})')


def _check_exists(path: str) -> None:
    if not osp.exists(path):
        raise FileNotFoundError(f'Volume file or folder {path} does not '
                                'exist')


def volume_stem(path: str) -> str:
    """The name of a volume without its folder and format suffix.

    Examples:
        >>> volume_stem('/data/ct/case_7.nii.gz'), volume_stem('/dcm/ser1/')
        ('case_7', 'ser1')
    """
    path = str(path).rstrip('/\\')
    name = osp.basename(path)
    for suffixes in SUPPORTED_FORMATS.values():
        for suffix in suffixes:
            if suffix.startswith('.') and name.lower().endswith(suffix):
                return name[:-len(suffix)]
    return name


def _format_of(path: str) -> str:
    if osp.isdir(path):
        return 'dicom'
    name = path.lower()
    for fmt, suffixes in SUPPORTED_FORMATS.items():
        if any(s.startswith('.') and name.endswith(s) for s in suffixes):
            return fmt
    with open(path, 'rb') as f:
        preamble = f.read(132)
    if preamble[128:132] == b'DICM':
        return 'dicom'
    raise ValueError(
        f'Cannot tell the format of {path}: supported are NIfTI (.nii, '
        '.nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mhd, .mha), a DICOM file '
        '(.dcm or a "DICM" preamble) and a folder holding one DICOM series')


def read_volume(path: str,
                series_uid: Optional[str] = None,
                dtype: np.dtype = np.float32) -> Volume:
    """Read a volume of any supported format.

    Args:
        path (str): A NIfTI, NRRD or MetaImage file, a DICOM file or a folder
            of DICOM slice files.
        series_uid (str, optional): The SeriesInstanceUID to read from a
            DICOM folder holding several series. Defaults to None (the
            folder must hold one series).
        dtype (np.dtype): dtype of :attr:`Volume.array`.
            Defaults to np.float32.

    Returns:
        Volume: (D, H, W) array and RAS affine.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be read, its format is unknown, the
            spacing is missing, or a DICOM folder mixes series. The message
            names the file.
    """
    path = str(path)
    _check_exists(path)
    fmt = _format_of(path)
    if fmt == 'nifti':
        volume = read_nifti_volume(path)
    elif fmt == 'nrrd':
        volume = read_nrrd(path)
    elif fmt == 'mhd':
        volume = read_mhd(path)
    else:
        volume = read_dicom_series(path, series_uid=series_uid)
    volume.meta.setdefault('stored_dtype', str(volume.array.dtype))
    volume.array = np.ascontiguousarray(volume.array, dtype=dtype)
    return volume


def read_nifti_volume(path: str) -> Volume:
    """Read a NIfTI file (:func:`svd_mm.utils.volume_io.read_nifti`)."""
    array, geometry = read_nifti(path)
    return Volume(
        array,
        np.asarray(geometry['affine']),
        source=path,
        format='nifti',
        meta=dict(stored_dtype=str(array.dtype)))


def read_nrrd(path: str) -> Volume:
    """Read a 3D NRRD file with pynrrd.

    The world frame comes from ``space`` (RAS, LPS or LAS), ``space
    directions`` (one row per axis: the vector between neighbouring voxels)
    and ``space origin``. A file without ``space directions`` but with
    ``spacings`` is read with axis-aligned LPS axes at the origin (what ITK
    assumes).

    Args:
        path (str): ``.nrrd`` or ``.nhdr`` file.

    Returns:
        Volume: The volume, its array in the file's dtype.
    """
    _check_exists(path)
    try:
        import nrrd
    except ImportError as e:  # pragma: no cover - a dependency
        raise ImportError('Reading NRRD needs pynrrd: pip install pynrrd') \
            from e
    try:
        data, header = nrrd.read(path)
    except Exception as e:
        raise ValueError(f'Cannot read {path} as NRRD: {type(e).__name__}: '
                         f'{e}') from e
    if data.ndim != 3:
        raise ValueError(f'{path} holds an array of shape {data.shape}; '
                         'expected a 3D volume')
    space = header.get('space')
    if 'space directions' in header:
        directions = np.asarray(header['space directions'], dtype=np.float64)
        if directions.shape != (3, 3) or not np.isfinite(directions).all():
            raise ValueError(
                f'{path}: "space directions" must give a 3D vector for each '
                f'of the 3 axes, but is {header["space directions"]}')
        origin = np.asarray(
            header.get('space origin', np.zeros(3)), dtype=np.float64)
    elif 'spacings' in header:
        spacings = np.asarray(header['spacings'], dtype=np.float64)
        if spacings.shape != (3, ) or not np.isfinite(spacings).all():
            raise ValueError(f'{path}: missing spacing, "spacings" is '
                             f'{header["spacings"]}')
        directions = np.diag(spacings)
        origin = np.zeros(3)
        space = space or 'left-posterior-superior'
    else:
        raise ValueError(
            f'{path} has no voxel spacing: its header has neither "space '
            'directions" nor "spacings"; add one, e.g. "space directions: '
            '(0.7,0,0) (0,0.7,0) (0,0,5)"')
    if space not in _NRRD_SPACES:
        raise ValueError(
            f'{path}: NRRD space {space!r} is not supported; supported are '
            f'{sorted(k for k in _NRRD_SPACES if "-" in k)}')
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # row a of "space directions" = axis a
    affine[:3, 3] = origin
    try:
        return Volume(
            np.ascontiguousarray(data.transpose(2, 1, 0)),
            _NRRD_SPACES[space] @ affine,
            source=path,
            format='nrrd',
            meta=dict(stored_dtype=str(data.dtype), space=space))
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from e


def _parse_mhd_header(path: str) -> Tuple[Dict[str, str], int]:
    """Header fields of a MetaImage file and the byte offset after it."""
    with open(path, 'rb') as f:
        head = f.read(1 << 16)
    fields, offset = {}, 0
    while offset < len(head):
        end = head.find(b'\n', offset)
        if end < 0:
            end = len(head)
        line = head[offset:end].decode('latin-1').strip()
        offset = end + 1
        if not line:
            continue
        if '=' not in line:
            raise ValueError(f'{path} is not a MetaImage header: line '
                             f'{line[:60]!r} is not "Key = Value"')
        key, value = (s.strip() for s in line.split('=', 1))
        fields[key] = value
        if key == 'ElementDataFile':
            return fields, offset
    raise ValueError(f'{path} is not a MetaImage header: no '
                     '"ElementDataFile = ..." line (it must be the last one)')


def _numbers(fields: Dict[str, str], keys: Sequence[str], count: int,
             path: str, kind=float) -> Optional[np.ndarray]:
    for key in keys:
        if key in fields:
            try:
                values = [kind(v) for v in fields[key].split()]
            except ValueError:
                values = []
            if len(values) != count:
                raise ValueError(f'{path}: {key} must hold {count} numbers, '
                                 f'but is {fields[key]!r}')
            return np.asarray(values)
    return None


def _is_true(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() in ('true', '1')


def read_mhd(path: str) -> Volume:
    """Read a 3D MetaImage (``.mhd`` header + data file, or ``.mha``).

    Args:
        path (str): The header file.

    Returns:
        Volume: The volume, its array in the file's dtype.

    Raises:
        ValueError: If a required field (``NDims``, ``DimSize``,
            ``ElementType``, ``ElementSpacing``) is missing or unsupported,
            or the data file is too short. The message names the file.
    """
    _check_exists(path)
    fields, data_offset = _parse_mhd_header(path)
    ndims = _numbers(fields, ['NDims'], 1, path, int)
    if ndims is None or int(ndims[0]) != 3:
        raise ValueError(f'{path}: only 3D MetaImages are supported, but '
                         f"NDims is {fields.get('NDims')!r}")
    channels = int(fields.get('ElementNumberOfChannels', '1'))
    if channels != 1:
        raise ValueError(f'{path}: ElementNumberOfChannels = {channels}; only '
                         'one-channel volumes are supported')
    dims = _numbers(fields, ['DimSize'], 3, path, int)
    if dims is None or (dims < 1).any():
        raise ValueError(f"{path}: DimSize is {fields.get('DimSize')!r}; "
                         'expected three positive sizes (x y z)')
    spacing = _numbers(fields, ['ElementSpacing', 'ElementSize'], 3, path)
    if spacing is None:
        raise ValueError(
            f'{path} has no voxel spacing (ElementSpacing); ITK would assume '
            '1 mm, which is rarely right for CT: add "ElementSpacing = sx '
            'sy sz"')
    if (spacing <= 0).any():
        raise ValueError(f'{path}: ElementSpacing must be positive, but is '
                         f'{spacing.tolist()}')
    element_type = fields.get('ElementType')
    if element_type not in MET_TYPES:
        raise ValueError(f'{path}: ElementType {element_type!r} is not '
                         f'supported; supported are {sorted(MET_TYPES)}')
    origin = _numbers(fields, ['Offset', 'Origin', 'Position'], 3, path)
    origin = np.zeros(3) if origin is None else origin
    matrix = _numbers(fields, ['TransformMatrix', 'Rotation', 'Orientation'],
                      9, path)
    matrix = np.eye(3) if matrix is None else matrix.reshape(3, 3)
    big_endian = _is_true(
        fields.get('ElementByteOrderMSB',
                   fields.get('BinaryDataByteOrderMSB')))
    dtype = np.dtype(MET_TYPES[element_type]).newbyteorder(
        '>' if big_endian else '<')

    data_file = fields['ElementDataFile']
    if data_file == 'LOCAL':
        data_path, offset = path, data_offset
    else:
        if data_file.upper().startswith('LIST') or '%' in data_file or \
                len(data_file.split()) > 1:
            raise ValueError(
                f'{path}: ElementDataFile {data_file!r} (several data files) '
                'is not supported; use LOCAL or one data file')
        data_path = osp.join(osp.dirname(path), data_file)
        offset = int(fields.get('HeaderSize', '0'))
        if not osp.isfile(data_path):
            raise FileNotFoundError(
                f'{path}: its data file {data_path} does not exist')
    with open(data_path, 'rb') as f:
        raw = f.read()
    num_bytes = int(np.prod(dims)) * dtype.itemsize
    if _is_true(fields.get('CompressedData')):
        try:
            raw = zlib.decompress(raw[max(offset, 0):])
        except zlib.error as e:
            raise ValueError(f'{data_path}: cannot decompress the zlib data '
                             f'of {path}: {e}') from e
        offset = 0
    elif offset == -1:  # HeaderSize = -1: the data are the last bytes
        offset = len(raw) - num_bytes
    if offset < 0 or len(raw) - offset < num_bytes:
        raise ValueError(
            f'{data_path} is too short for {path}: DimSize '
            f'{dims.tolist()} of {element_type} needs {num_bytes} bytes, but '
            f'{max(len(raw) - max(offset, 0), 0)} are there')
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)),
                         offset=offset)
    # x varies fastest: C order (z, y, x) = (D, H, W)
    array = data.reshape(dims[::-1]).astype(dtype.newbyteorder('='))
    lps = np.eye(4)
    lps[:3, :3] = matrix.T * spacing  # column a: direction of axis a
    lps[:3, 3] = origin
    try:
        return Volume(
            array,
            LPS_TO_RAS @ lps,
            source=path,
            format='mhd',
            meta=dict(stored_dtype=str(array.dtype),
                      element_type=element_type))
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from e


def _dicom_files(folder: str) -> List[str]:
    names = sorted(n for n in os.listdir(folder)
                   if not n.startswith('.') and n.upper() != 'DICOMDIR')
    return [
        osp.join(folder, n) for n in names if osp.isfile(osp.join(folder, n))
    ]


def read_dicom_series(path: str,
                      series_uid: Optional[str] = None,
                      uniformity_tol: float = 0.05) -> Volume:
    """Read one DICOM series (a folder of slice files, or one slice file).

    - Files that are not DICOM (a README, a ``DICOMDIR``) are skipped; the
      others are grouped by ``SeriesInstanceUID``. A folder with several
      series is refused (the message lists their UIDs) unless
      ``series_uid`` picks one.
    - Slices are sorted by the projection of ``ImagePositionPatient`` on the
      slice normal, the cross product of the two direction cosines of
      ``ImageOrientationPatient`` (row direction: along the columns index
      ``i``; column direction: along the rows index ``j``).
    - Voxel values are ``pixel_array * RescaleSlope + RescaleIntercept``
      (per slice), float32.
    - Spacing: ``PixelSpacing`` gives (row spacing = along ``j``, column
      spacing = along ``i``); along ``k`` the step between the first and the
      last slice positions over ``D - 1`` (a single slice:
      ``SpacingBetweenSlices``, else ``SliceThickness``). Gaps between
      slices that differ from their median by more than ``uniformity_tol``
      (relative) are refused: a missing slice would distort the volume.

    Args:
        path (str): Folder of one series' files, or one DICOM file.
        series_uid (str, optional): The series to read from a folder holding
            several. Defaults to None.
        uniformity_tol (float): Relative tolerance of the slice gaps.
            Defaults to 0.05.

    Returns:
        Volume: float32 (D, H, W) volume, its affine from the LPS patient
        coordinates converted to RAS; ``meta`` holds ``series_uid``,
        ``modality``, ``num_files`` and ``skipped`` (non-DICOM files).
    """
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as e:  # pragma: no cover - a dependency
        raise ImportError('Reading DICOM needs pydicom: pip install pydicom') \
            from e
    _check_exists(path)
    files = _dicom_files(path) if osp.isdir(path) else [path]
    headers, skipped = {}, []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError) as e:
            if not osp.isdir(path):
                raise ValueError(f'Cannot read {file} as DICOM: {e}') from e
            skipped.append(osp.basename(file))
            continue
        if 'Rows' not in ds:  # not an image (e.g. a report)
            skipped.append(osp.basename(file))
            continue
        headers[file] = ds
    if not headers:
        note = f' (skipped: {", ".join(skipped[:5])})' if skipped else ''
        raise ValueError(f'{path} holds no DICOM image files{note}')
    series: Dict[str, List[str]] = {}
    for file, ds in headers.items():
        series.setdefault(str(ds.get('SeriesInstanceUID', '')), []).append(
            file)
    if series_uid is not None:
        if series_uid not in series:
            raise ValueError(f'{path} holds no series {series_uid}; its '
                             f'series are {sorted(series)}')
        series = {series_uid: series[series_uid]}
    if len(series) > 1:
        listing = '; '.join(f'{uid or "<no SeriesInstanceUID>"} '
                            f'({len(f)} files)'
                            for uid, f in sorted(series.items()))
        raise ValueError(
            f'DICOM folder {path} mixes {len(series)} series: {listing}. '
            'Put each series in its own folder or choose one with '
            'series_uid (tools/infer.py --series-uid)')
    uid, files = next(iter(series.items()))
    return _read_dicom_slices(path, files, headers, uid, skipped,
                              uniformity_tol)


def _dicom_floats(ds, key: str, count: int, file: str) -> np.ndarray:
    value = ds.get(key)
    if value is None:
        raise ValueError(f'{file} has no {key}; it is needed for the voxel '
                         'geometry (missing spacing / position)')
    try:
        values = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'{file}: {key} = {value!r} is not {count} '
                         'numbers') from e
    if values.shape != (count, ) or not np.isfinite(values).all():
        raise ValueError(f'{file}: {key} = {value!r} is not {count} numbers')
    return values


def _read_dicom_slices(path, files, headers, uid, skipped,
                       uniformity_tol) -> Volume:
    first = headers[files[0]]
    if int(first.get('NumberOfFrames', 1) or 1) > 1:
        raise ValueError(f'{files[0]} is a multi-frame DICOM; only series '
                         'of single-frame slices are supported')
    orientation = _dicom_floats(first, 'ImageOrientationPatient', 6,
                                files[0])
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    if abs(np.linalg.norm(normal) - 1) > 1e-3:
        raise ValueError(f'{files[0]}: ImageOrientationPatient {orientation} '
                         'is not two orthogonal unit vectors')
    pixel_spacing = _dicom_floats(first, 'PixelSpacing', 2, files[0])
    shape = (int(first.Rows), int(first.Columns))
    positions = []
    for file in files:
        ds = headers[file]
        if (int(ds.Rows), int(ds.Columns)) != shape:
            raise ValueError(
                f'{file} has {ds.Rows}x{ds.Columns} pixels, but '
                f'{files[0]} of the same series has {shape[0]}x{shape[1]}')
        if not np.allclose(
                _dicom_floats(ds, 'ImageOrientationPatient', 6, file),
                orientation, atol=1e-4):
            raise ValueError(f'{file} has another ImageOrientationPatient '
                             f'than {files[0]} of the same series')
        if not np.allclose(
                _dicom_floats(ds, 'PixelSpacing', 2, file),
                pixel_spacing, atol=1e-5):
            raise ValueError(f'{file} has another PixelSpacing than '
                             f'{files[0]} of the same series')
        positions.append(_dicom_floats(ds, 'ImagePositionPatient', 3, file))
    positions = np.stack(positions)
    along = positions @ normal
    order = np.argsort(along, kind='stable')
    files = [files[i] for i in order]
    positions, along = positions[order], along[order]
    if len(files) > 1:
        gaps = np.diff(along)
        if (gaps < 1e-4).any():
            i = int(np.argmin(gaps))
            raise ValueError(
                f'{files[i]} and {files[i + 1]} lie at the same slice '
                f'position {along[i]:.3f} mm; is the folder holding several '
                'acquisitions of the series?')
        median = float(np.median(gaps))
        bad = np.abs(gaps - median) > uniformity_tol * median + 1e-3
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f'Non-uniform slice spacing in {path}: {files[i]} -> '
                f'{files[i + 1]} is {gaps[i]:.3f} mm while the median gap is '
                f'{median:.3f} mm (missing slices?)')
        step = (positions[-1] - positions[0]) / (len(files) - 1)
    else:
        thickness = first.get('SpacingBetweenSlices') or first.get(
            'SliceThickness')
        if thickness is None or not float(thickness) > 0:
            raise ValueError(
                f'{files[0]} is a single slice without SpacingBetweenSlices '
                'or SliceThickness: missing spacing along the slice normal')
        step = normal * float(thickness)

    import pydicom
    slices = []
    for file in files:
        ds = pydicom.dcmread(file)
        try:
            pixels = ds.pixel_array
        except Exception as e:
            syntax = getattr(
                getattr(ds, 'file_meta', None), 'TransferSyntaxUID', '?')
            raise ValueError(
                f'Cannot decode the pixels of {file} (transfer syntax '
                f'{syntax}): {type(e).__name__}: {e}') from e
        if pixels.shape != shape:
            raise ValueError(f'{file}: pixel data of shape {pixels.shape}, '
                             f'expected (Rows, Columns) = {shape}')
        slope = float(ds.get('RescaleSlope', 1) or 1)
        intercept = float(ds.get('RescaleIntercept', 0) or 0)
        slices.append(pixels.astype(np.float32) * np.float32(slope) +
                      np.float32(intercept))
    lps = np.eye(4)
    lps[:3, 0] = row_dir * pixel_spacing[1]  # i: along a row
    lps[:3, 1] = col_dir * pixel_spacing[0]  # j: down a column
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    return Volume(
        np.stack(slices),
        LPS_TO_RAS @ lps,
        source=path,
        format='dicom',
        meta=dict(
            series_uid=uid,
            modality=str(first.get('Modality', '')),
            num_files=len(files),
            skipped=skipped,
            stored_dtype=str(pixels.dtype)))


def _array_and_affine(volume: Union[Volume, np.ndarray],
                      affine: Optional[np.ndarray]
                      ) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(volume, Volume):
        if affine is not None:
            raise ValueError('Give the affine of a Volume through the Volume, '
                             'not as a second argument')
        return volume.array, volume.affine
    if affine is None:
        raise ValueError('Writing an array needs its (4, 4) RAS affine')
    return Volume(np.asarray(volume), affine).array, np.asarray(
        affine, dtype=np.float64)


def write_mhd(volume: Union[Volume, np.ndarray],
              path: str,
              affine: Optional[np.ndarray] = None,
              dtype: Optional[np.dtype] = None,
              compress: bool = False) -> str:
    """Write a MetaImage: ``.mhd`` (header + ``<name>.raw`` / ``.zraw``) or
    ``.mha`` (``ElementDataFile = LOCAL``).

    The RAS affine is written in ITK's LPS convention (``Offset``,
    ``TransformMatrix``, ``ElementSpacing``), so that :func:`read_mhd`, ITK
    and 3D Slicer read it back on the same grid.

    Args:
        volume (Volume | np.ndarray): The volume, or a (D, H, W) array.
        path (str): ``.mhd`` or ``.mha`` file; its folder is created.
        affine (np.ndarray, optional): (4, 4) RAS affine of an array.
            Defaults to None.
        dtype (np.dtype, optional): dtype written (one of
            :data:`MET_TYPES`; bool is written as uint8). Defaults to None
            (the array's).
        compress (bool): zlib-compress the data. Defaults to False.

    Returns:
        str: ``path``.
    """
    array, affine = _array_and_affine(volume, affine)
    if not path.lower().endswith(('.mhd', '.mha')):
        raise ValueError(f'MetaImage path must end with .mhd or .mha, got '
                         f'{path}')
    array = np.asarray(array, dtype=dtype)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    met = {np.dtype(v): k for k, v in MET_TYPES.items()}
    if array.dtype not in met:
        names = sorted(str(np.dtype(t)) for t in MET_TYPES.values())
        raise ValueError(f'Cannot write dtype {array.dtype} as MetaImage to '
                         f'{path}; cast to one of {names}')
    lps = LPS_TO_RAS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    matrix = (lps[:3, :3] / spacing).T  # row a: direction of axis a
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<'))
    data = data.tobytes()
    if compress:
        data = zlib.compress(data)
    local = path.lower().endswith('.mha')
    stem = osp.splitext(osp.basename(path))[0]
    data_name = 'LOCAL' if local else stem + ('.zraw' if compress else '.raw')

    def fmt(values):
        return ' '.join(f'{float(v):.10g}' for v in np.ravel(values))

    lines = [
        'ObjectType = Image',
        'NDims = 3',
        'BinaryData = True',
        'BinaryDataByteOrderMSB = False',
        f'CompressedData = {compress}',
    ]
    if compress:
        lines.append(f'CompressedDataSize = {len(data)}')
    lines += [
        f'TransformMatrix = {fmt(matrix)}',
        f'Offset = {fmt(lps[:3, 3])}',
        'CenterOfRotation = 0 0 0',
        f'ElementSpacing = {fmt(spacing)}',
        f'DimSize = {" ".join(str(s) for s in array.shape[::-1])}',
        f'ElementType = {met[array.dtype]}',
        f'ElementDataFile = {data_name}',
    ]
    header = ('\n'.join(lines) + '\n').encode('latin-1')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(header)
        if local:
            f.write(data)
    if not local:
        with open(osp.join(osp.dirname(path), data_name), 'wb') as f:
            f.write(data)
    return path


def write_nrrd(volume: Union[Volume, np.ndarray],
               path: str,
               affine: Optional[np.ndarray] = None,
               dtype: Optional[np.dtype] = None,
               compression_level: int = 1) -> str:
    """Write a gzip NRRD in ``left-posterior-superior`` space (pynrrd).

    Args:
        volume (Volume | np.ndarray): The volume, or a (D, H, W) array.
        path (str): ``.nrrd`` file; its folder is created.
        affine (np.ndarray, optional): (4, 4) RAS affine of an array.
            Defaults to None.
        dtype (np.dtype, optional): dtype written. Defaults to None.
        compression_level (int): gzip level, 1 (fast, the default) to 9
            (pynrrd's default, about 10 times slower for a CT).

    Returns:
        str: ``path``.
    """
    import nrrd
    array, affine = _array_and_affine(volume, affine)
    if not path.lower().endswith('.nrrd'):
        raise ValueError(f'NRRD path must end with .nrrd, got {path}')
    array = np.asarray(array, dtype=dtype)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    lps = LPS_TO_RAS @ affine
    header = {
        'space': 'left-posterior-superior',
        'space directions': lps[:3, :3].T,
        'space origin': lps[:3, 3],
        'kinds': ['domain'] * 3,
        'encoding': 'gzip',
    }
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    nrrd.write(
        path,
        np.ascontiguousarray(array.transpose(2, 1, 0)),
        header,
        compression_level=compression_level)
    return path


def write_volume(volume: Union[Volume, np.ndarray],
                 path: str,
                 affine: Optional[np.ndarray] = None,
                 dtype: Optional[np.dtype] = None) -> str:
    """Write a volume as NIfTI, NRRD or MetaImage, by the suffix of
    ``path`` (``.nii`` / ``.nii.gz``, ``.nrrd``, ``.mhd`` / ``.mha``).

    Args:
        volume (Volume | np.ndarray): The volume, or a (D, H, W) array.
        path (str): Output file.
        affine (np.ndarray, optional): (4, 4) RAS affine of an array.
            Defaults to None.
        dtype (np.dtype, optional): dtype written, e.g. np.int16 for CT.
            Defaults to None.

    Returns:
        str: ``path``.
    """
    name = str(path).lower()
    if name.endswith(('.nii', '.nii.gz')):
        array, affine = _array_and_affine(volume, affine)
        return write_nifti(array, affine, path, dtype=dtype)
    if name.endswith('.nrrd'):
        return write_nrrd(volume, path, affine, dtype)
    if name.endswith(('.mhd', '.mha')):
        return write_mhd(volume, path, affine, dtype)
    raise ValueError(f'Cannot write {path}: use .nii, .nii.gz, .nrrd, .mhd '
                     'or .mha')


def write_mask(mask: np.ndarray, reference: Volume, path: str) -> str:
    """Write a (D, H, W) label mask as NIfTI on the grid of ``reference``.

    The mask gets the reference's shape check and affine, whatever the
    reference's own format, so that it overlays the input in any viewer.

    Args:
        mask (np.ndarray): (D, H, W) integer labels (0 background), values
            in [0, 255].
        reference (Volume): The volume the mask belongs to.
        path (str): ``.nii`` or ``.nii.gz`` file.

    Returns:
        str: ``path``.
    """
    mask = np.asarray(mask)
    if tuple(mask.shape) != reference.shape:
        raise ValueError(
            f'mask of shape {tuple(mask.shape)} does not match the (D, H, W) '
            f'{reference.shape} of {reference.source or "the reference"}')
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f'mask labels must lie in [0, 255], but range over '
                         f'[{mask.min()}, {mask.max()}]')
    if not str(path).lower().endswith(('.nii', '.nii.gz')):
        raise ValueError(f'Masks are written as NIfTI: {path} must end with '
                         '.nii or .nii.gz')
    return write_nifti(mask.astype(np.uint8), reference.affine, path)
