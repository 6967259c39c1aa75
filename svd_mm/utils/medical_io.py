"""Read a user's CT / MR volume from NIfTI, NRRD, MetaImage or DICOM into
one :class:`Volume`, and write volumes and masks back in its geometry.

:class:`Volume` is :class:`svd_mm.utils.volume_io.Volume` (re-exported
here), so a volume read here goes straight into the preprocessing and
resampling of :mod:`~svd_mm.utils.volume_io`, whose conventions it follows
(ITK's LPS geometry converted with :data:`LPS_TO_RAS`). :func:`read_volume`
gives float32 arrays, for CT in Hounsfield units (DICOM ``RescaleSlope`` /
``RescaleIntercept`` applied).

:func:`read_volume` reads NIfTI with nibabel
(:func:`~svd_mm.utils.volume_io.read_nifti`, the reader of the training
pipelines, so that inference sees the arrays training saw), NRRD and
MetaImage with SimpleITK and a DICOM series with SimpleITK's GDCM
(:func:`read_dicom_series`); :data:`SUPPORTED_FORMATS` lists the suffixes.

Masks are written as NIfTI with the input's affine (:func:`write_mask`), so
that they overlay the input in any viewer, whatever its format was.
"""
import os
import os.path as osp
import re
from typing import List, Optional, Tuple, Union

import numpy as np
import SimpleITK as sitk
from nibabel.affines import from_matvec

from .volume_io import (LPS_TO_RAS, NIFTI_SUFFIXES, Volume, _check_3d,
                        _writable, atomic_output, read_nifti, reading,
                        write_nifti)

__all__ = [
    'Volume', 'LPS_TO_RAS', 'read_volume', 'read_dicom_series',
    'write_volume', 'write_mask', 'volume_stem', 'SUPPORTED_FORMATS'
]

#: File suffixes of each format (a folder is a DICOM series).
SUPPORTED_FORMATS = {
    'nifti': NIFTI_SUFFIXES,
    'nrrd': ('.nrrd', '.nhdr'),
    'mhd': ('.mhd', '.mha'),
    'dicom': ('.dcm', '<folder>'),
}

#: Header keys that give the voxel spacing; a file without any is refused
#: (ITK would assume 1 mm, which is rarely right for CT).
_SPACING_KEYS = dict(nrrd=('space directions', 'spacings'),
                     mhd=('ElementSpacing', 'ElementSize'))

#: DICOM tags read from the slice headers (SimpleITK's "gggg|eeee" keys).
_TAGS = dict(
    SeriesInstanceUID='0020|000e', ImagePositionPatient='0020|0032',
    ImageOrientationPatient='0020|0037', PixelSpacing='0028|0030',
    NumberOfFrames='0028|0008', Modality='0008|0060',
    SliceThickness='0018|0050', SpacingBetweenSlices='0018|0088')


def _suffix(path: str) -> Tuple[str, str]:
    """The format of a file name and its suffix (('', '') if unknown)."""
    for fmt, suffixes in SUPPORTED_FORMATS.items():
        for suffix in suffixes:
            if suffix.startswith('.') and path.lower().endswith(suffix):
                return fmt, suffix
    return '', ''


def volume_stem(path: str) -> str:
    """The name of a volume without its folder and format suffix.

    Examples:
        >>> volume_stem('/data/ct/case_7.nii.gz'), volume_stem('/dcm/ser1/')
        ('case_7', 'ser1')
    """
    name = osp.basename(str(path).rstrip('/\\'))
    return name[:len(name) - len(_suffix(name)[1])]


def _is_dicom(file: str) -> bool:
    """Whether a file has the DICOM preamble."""
    with open(file, 'rb') as f:
        return f.read(132)[128:] == b'DICM'


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
        ValueError: If the file cannot be read (truncated, corrupt, not
            3D, NaN voxels), its format is unknown, the spacing is missing,
            or a DICOM folder mixes series. The message names the file.
    """
    path = str(path)
    fmt = 'dicom' if osp.isdir(path) else _suffix(path)[0]
    if not fmt and not _is_dicom(path):
        raise ValueError(
            f'Cannot tell the format of {path}: supported are NIfTI (.nii, '
            '.nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mhd, .mha), a DICOM '
            'file (.dcm or a "DICM" preamble) and a folder of one series')
    if fmt == 'nifti':
        volume = read_nifti(path)
    elif fmt in ('nrrd', 'mhd'):
        volume = _read_itk(path, fmt)
    else:
        volume = read_dicom_series(path, series_uid=series_uid)
    volume.meta.setdefault('stored_dtype', str(volume.array.dtype))
    volume.array = np.ascontiguousarray(volume.array, dtype=dtype)
    return volume


def _declares_spacing(path: str, fmt: str) -> bool:
    """Whether the text header of a NRRD / MetaImage (up to a blank line
    or ``ElementDataFile``) has a line starting with a spacing key."""
    with open(path, 'rb') as f:
        head = f.read(1 << 16).decode('latin-1')
    head = re.split(r'^\s*$|^ElementDataFile', head, maxsplit=1, flags=re.M)[0]
    keys = '|'.join(_SPACING_KEYS[fmt])
    return re.search(rf'^\s*({keys})', head, flags=re.M | re.I) is not None


def _from_sitk(image: sitk.Image, path: str, fmt: str, **meta) -> Volume:
    """A :class:`Volume` from a SimpleITK image (trailing axes of size 1
    dropped, its LPS geometry turned into the RAS affine)."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f'{path} holds {image.GetNumberOfComponentsPerPixel()} '
            'components per voxel; expected a scalar volume')
    array = _check_3d(sitk.GetArrayFromImage(image).T, path).T
    dim = image.GetDimension()
    direction = np.reshape(image.GetDirection(), (dim, dim))[:3, :3]
    lps = from_matvec(direction * image.GetSpacing()[:3],
                      image.GetOrigin()[:3])
    return Volume(array, LPS_TO_RAS @ lps, path, fmt, meta)


def _header(file: str, image_io: str = '') -> sitk.ImageFileReader:
    """A reader of ``file`` with its header read (no pixels); ITK picks
    the ImageIO unless ``image_io`` names one."""
    reader = sitk.ImageFileReader()
    reader.SetImageIO(image_io)
    reader.SetFileName(file)
    with reading(file):
        reader.ReadImageInformation()
    return reader


def _read_itk(path: str, fmt: str) -> Volume:
    """Read a 3D NRRD (``fmt='nrrd'``) or MetaImage (``'mhd'``) file.

    NRRD spaces RAS, LAS and LPS are taken to LPS by ITK; other spaces
    (e.g. ``scanner-xyz``) and files without a spacing are refused.
    """
    reader = _header(path)
    space = _tag(reader, 'NRRD_space')
    if space not in ('', 'left-posterior-superior'):
        raise ValueError(f'{path}: NRRD space {space!r} is not supported; '
                         'supported are right-anterior-superior, '
                         'left-anterior-superior and left-posterior-superior')
    if not _declares_spacing(path, fmt):
        raise ValueError(
            f'{path} has no voxel spacing: its header has none of '
            f'{list(_SPACING_KEYS[fmt])}; ITK would assume 1 mm, which is '
            'rarely right for CT')
    with reading(path):
        image = reader.Execute()
    return _from_sitk(image, path, fmt)


def _tag(header: sitk.ImageFileReader, name: str,
         count: int = 0) -> Union[str, np.ndarray]:
    """A DICOM tag of a header by its keyword (other keys as they are):
    text ('' if missing) or ``count`` > 0 numbers, which must be there."""
    file, tag = header.GetFileName(), _TAGS.get(name, name)
    if not header.HasMetaDataKey(tag):
        if not count:
            return ''
        raise ValueError(f'{file} has no {name}; it is needed for the voxel '
                         'geometry (missing spacing / position)')
    value = header.GetMetaData(tag).strip()
    if not count:
        return value
    try:
        numbers = np.asarray([float(v) for v in value.split('\\')])
    except ValueError:
        numbers = np.zeros(0)
    if numbers.shape != (count, ) or not np.isfinite(numbers).all():
        raise ValueError(f'{file}: {name} = {value!r} is not {count} '
                         'numbers')
    return numbers


def _series_files(folder: str,
                  series_uid: Optional[str]) -> Tuple[List[str], List[str]]:
    """The files of one series of a DICOM folder, in GDCM's slice order
    (along the slice normal), and the names of the files of no series."""
    series = {
        uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)
    }
    listed = {osp.basename(f) for files in series.values() for f in files}
    skipped = sorted(
        n for n in os.listdir(folder) if n not in listed
        and not n.startswith('.') and osp.isfile(osp.join(folder, n)))
    for name in skipped:
        if _is_dicom(osp.join(folder, name)):
            raise ValueError(
                f'Cannot read {osp.join(folder, name)}: a DICOM file in no '
                'readable series (truncated or corrupt?)')
    if not series:
        note = f' (skipped: {", ".join(skipped[:5])})' if skipped else ''
        raise ValueError(f'{folder} holds no DICOM image files{note}')
    if series_uid is None and len(series) > 1:
        listing = '; '.join(f'{uid} ({len(files)} files)'
                            for uid, files in sorted(series.items()))
        raise ValueError(
            f'DICOM folder {folder} mixes {len(series)} series: {listing}. '
            'Put each series in its own folder or choose one with '
            'series_uid (tools/infer.py --series-uid)')
    if series_uid is not None and series_uid not in series:
        raise ValueError(f'{folder} holds no series {series_uid}; its '
                         f'series are {sorted(series)}')
    return series[series_uid or next(iter(series))], skipped


def _check_slices(path: str, headers: List[sitk.ImageFileReader]) -> None:
    """Refuse a series whose slices differ in size, orientation or pixel
    spacing, share a position, or are not evenly spaced (gaps within 5 %
    of their median)."""
    def grid(header):
        return (header.GetSize()[:2],
                _tag(header, 'ImageOrientationPatient', 6),
                _tag(header, 'PixelSpacing', 2))

    files = [header.GetFileName() for header in headers]
    first = grid(headers[0])
    for file, header in zip(files, headers):
        for name, value, expected, atol in zip(
            ('pixels', 'ImageOrientationPatient', 'PixelSpacing'),
                grid(header), first, (0, 1e-4, 1e-5)):
            if not np.allclose(value, expected, atol=atol):
                raise ValueError(f'{file} has another {name} ({value}) than '
                                 f'{files[0]} ({expected}) of the series')
    positions = [_tag(header, 'ImagePositionPatient', 3) for header in headers]
    if len(files) < 2:
        return
    along = np.stack(positions) @ np.cross(first[1][:3], first[1][3:])
    gaps = np.abs(np.diff(along))
    i = int(np.argmin(gaps))
    if gaps[i] < 1e-4:
        raise ValueError(
            f'{files[i]} and {files[i + 1]} lie at the same slice position '
            f'{along[i]:.3f} mm; is the folder holding several acquisitions '
            'of the series?')
    median = float(np.median(gaps))
    bad = np.abs(gaps - median) > 0.05 * median + 1e-3
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f'Non-uniform slice spacing in {path}: {files[i]} -> '
            f'{files[i + 1]} is {gaps[i]:.3f} mm while the median gap is '
            f'{median:.3f} mm (missing slices?)')


def read_dicom_series(path: str, series_uid: Optional[str] = None) -> Volume:
    """Read one DICOM series (a folder of slice files, or one slice file)
    with SimpleITK's GDCM, which decodes uncompressed, big-endian, RLE,
    JPEG lossless, JPEG-LS and JPEG 2000 pixel data.

    - Files that are not DICOM (a README) are skipped; the others are
      grouped by ``SeriesInstanceUID``. A folder with several series is
      refused (the message lists their UIDs) unless ``series_uid`` picks
      one.
    - GDCM sorts the slices along the slice normal; the affine is ITK's
      (``ImageOrientationPatient`` for the axes i and j, their cross product
      for k, ``PixelSpacing`` and the slice step for the spacing), converted
      from LPS to RAS. A single slice takes its step from
      ``SpacingBetweenSlices``, else ``SliceThickness``.
    - Voxel values are ``pixels * RescaleSlope + RescaleIntercept``.
    - Slices must share size, orientation and pixel spacing, and lie evenly
      spaced (a missing slice would distort the volume). Multi-frame files
      are refused.

    Args:
        path (str): Folder of one series' files, or one DICOM file.
        series_uid (str, optional): The series to read from a folder holding
            several. Defaults to None.

    Returns:
        Volume: (D, H, W) volume and its RAS affine; ``meta`` holds
        ``series_uid``, ``modality``, ``num_files`` and ``skipped``
        (non-DICOM files).
    """
    files, skipped = _series_files(path, series_uid) if osp.isdir(path) \
        else ([path], [])
    headers = [_header(file, 'GDCMImageIO') for file in files]
    first = headers[0]
    if int(_tag(first, 'NumberOfFrames') or 1) > 1:
        raise ValueError(f'{files[0]} is a multi-frame DICOM; only series '
                         'of single-frame slices are supported')
    _check_slices(path, headers)
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO('GDCMImageIO')
    reader.SetFileNames(files)
    with reading(path):
        image = reader.Execute()
    if len(files) == 1:
        step = float(_tag(first, 'SpacingBetweenSlices')
                     or _tag(first, 'SliceThickness') or 0)
        if not step > 0:
            raise ValueError(
                f'{files[0]} is a single slice without SpacingBetweenSlices '
                'or SliceThickness: missing spacing along the slice normal')
        image.SetSpacing(image.GetSpacing()[:2] + (step, ))
    return _from_sitk(image, path, 'dicom', num_files=len(files),
                      series_uid=_tag(first, 'SeriesInstanceUID'),
                      modality=_tag(first, 'Modality'), skipped=skipped)


def write_volume(volume: Union[Volume, np.ndarray],
                 path: str,
                 affine: Optional[np.ndarray] = None,
                 dtype: Optional[np.dtype] = None) -> str:
    """Write a volume as NIfTI (nibabel), NRRD (gzip) or MetaImage
    (SimpleITK), by the suffix of ``path`` (``.nii`` / ``.nii.gz``,
    ``.nrrd``, ``.mhd`` / ``.mha``).

    The files are written atomically, the header last
    (:func:`~svd_mm.utils.volume_io.atomic_output`).

    Args:
        volume (Volume | np.ndarray): The volume, or a (D, H, W) array.
        path (str): Output file; its folder is created.
        affine (np.ndarray, optional): (4, 4) RAS affine of an array.
            Defaults to None.
        dtype (np.dtype, optional): dtype written, e.g. np.int16 for CT;
            bool is written as uint8. Defaults to None (the array's).

    Returns:
        str: ``path``.
    """
    path = str(path)
    if isinstance(volume, Volume) == (affine is not None):
        raise ValueError('write_volume needs the (4, 4) RAS affine of an '
                         'array, and no affine with a Volume (it has its own)')
    if affine is not None:
        volume = Volume(volume, affine)
    if path.lower().endswith(NIFTI_SUFFIXES):
        return write_nifti(volume, path, dtype=dtype)
    if not path.lower().endswith(('.nrrd', '.mhd', '.mha')):
        raise ValueError(f'Cannot write {path}: use .nii, .nii.gz, .nrrd, '
                         '.mhd or .mha')
    image = sitk.GetImageFromArray(_writable(volume.array, dtype))
    image.SetSpacing(volume.spacing[::-1])
    image.SetOrigin(volume.lps_affine[:3, 3])
    image.SetDirection(np.ravel(LPS_TO_RAS[:3, :3] @ volume.direction))
    with atomic_output(path) as tmp:
        sitk.WriteImage(image, tmp, useCompression=path.lower().endswith(
            '.nrrd'), compressionLevel=1)
    return path


def write_mask(mask: np.ndarray, reference: Volume, path: str) -> str:
    """Write a (D, H, W) label mask as NIfTI on the grid of ``reference``.

    The mask gets the reference's shape check and affine, whatever the
    reference's own format, so that it overlays the input in any viewer.
    Written by :func:`~svd_mm.utils.volume_io.write_nifti`.

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
    if mask.min() < 0 or mask.max() > 255:
        raise ValueError(f'mask labels must lie in [0, 255], but range over '
                         f'[{mask.min()}, {mask.max()}]')
    return write_nifti(Volume(mask.astype(np.uint8), reference.affine), path)
