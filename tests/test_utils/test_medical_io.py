"""Reading NIfTI / NRRD / MetaImage / DICOM into one Volume, on real CT."""
import os
import shutil
import zlib

import nrrd
import numpy as np
import pydicom
import pytest

from svd_mm.utils.medical_io import (LPS_TO_RAS, Volume, read_dicom_series,
                                     read_volume, volume_stem, write_mask,
                                     write_volume)
from svd_mm.utils.volume_io import read_nifti
from tests.helpers import dicom_series_from, pydicom_test_file
from tests.helpers.ct_crops import lesion_crop
from tests.helpers.data_cache import fetch_pyradiomics_ct

# lung1 of the pyradiomics sdist: 512 x 512 x 48, 0.5703125 mm pixels, 5 mm
# slices, LPS origin (-146, -325, -777.5)
LUNG1_SHAPE = (48, 512, 512)
LUNG1_RAS = np.array([[-0.5703125, 0, 0, 146.], [0, -0.5703125, 0, 325.],
                      [0, 0, 5., -777.5], [0, 0, 0, 1]])


@pytest.fixture(scope='module')
def lung1():
    return fetch_pyradiomics_ct()[0]


@pytest.fixture(scope='module')
def crop(lung1):
    """A (10, 40, 48) crop of lung1 around its lesion, with its geometry."""
    image, _ = lesion_crop((10, 40, 48))
    image.source = 'crop'
    return image


def test_read_real_nrrd(lung1):
    volume = read_volume(lung1['image'])
    assert volume.format == 'nrrd'
    assert volume.shape == LUNG1_SHAPE
    assert volume.array.dtype == np.float32
    assert volume.meta['stored_dtype'] == 'int16'
    assert volume.spacing == (5., 0.5703125, 0.5703125)
    np.testing.assert_allclose(volume.affine, LUNG1_RAS)
    np.testing.assert_allclose(volume.origin, [146., 325., -777.5])
    np.testing.assert_allclose(volume.direction, np.diag([-1., -1., 1.]))
    np.testing.assert_allclose(volume.lps_affine[:3, 3], [-146, -325, -777.5])
    data, _ = nrrd.read(lung1['image'])  # (x, y, z)
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    # voxel (d, h, w) = (1, 2, 3) lies at LPS origin + (3, 2, 1) * spacing
    lps = LPS_TO_RAS[:3, :3] @ volume.dhw_to_ras([1, 2, 3])
    np.testing.assert_allclose(
        lps, [-146 + 3 * 0.5703125, -325 + 2 * 0.5703125, -777.5 + 5.])


# [suffix, writer kwargs]: every writer reads back on the same grid
ROUND_TRIPS = [
    ['.nii.gz', {}],
    ['.nii', {}],
    ['.nrrd', {}],
    ['.mhd', {}],
    ['.mha', {}],
]


@pytest.mark.parametrize('suffix,kwargs', ROUND_TRIPS)
def test_round_trip_real_crop(crop, tmp_path, suffix, kwargs):
    path = str(tmp_path / f'crop{suffix}')
    write_volume(crop, path, dtype=np.int16, **kwargs)
    back = read_volume(path)
    assert back.shape == (10, 40, 48)
    assert back.meta['stored_dtype'] == 'int16'
    np.testing.assert_array_equal(back.array, crop.array)
    np.testing.assert_allclose(back.affine, crop.affine, atol=1e-6)
    assert volume_stem(path) == 'crop'


# oblique and permuted grids (RAS affines): axes not along x, y, z
OBLIQUE_AFFINES = [
    # sagittal acquisition: i -> anterior, j -> inferior, k -> left
    np.array([[0, 0, -2., 10.], [0.8, 0, 0, -20.], [0, -0.8, 0, 30.],
              [0, 0, 0, 1]]),
    # rotated by 30 degrees about z
    np.array([[0.6 * np.cos(0.5), -0.6 * np.sin(0.5), 0, 1.],
              [0.6 * np.sin(0.5), 0.6 * np.cos(0.5), 0, 2.],
              [0, 0, 3., 3.], [0, 0, 0, 1]]),
]


@pytest.mark.parametrize('affine', OBLIQUE_AFFINES)
@pytest.mark.parametrize('suffix', ['.nii.gz', '.nrrd', '.mhd'])
def test_round_trip_oblique(tmp_path, affine, suffix):
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = str(tmp_path / f'oblique{suffix}')
    write_volume(array, path, affine=affine)
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)


def _write_mhd_by_hand(folder, fields, data: bytes, local=False,
                       name='hand'):
    """A MetaImage written field by field, as other tools write it."""
    lines = [f'{k} = {v}' for k, v in fields.items()]
    header = os.path.join(folder, name + ('.mha' if local else '.mhd'))
    with open(header, 'wb') as f:
        f.write(('\n'.join(lines) + '\n').encode())
        if local:
            f.write(data)
    if not local and fields.get('ElementDataFile') not in (None, 'LOCAL'):
        with open(os.path.join(folder, fields['ElementDataFile']), 'wb') as f:
            f.write(data)
    return header


# [ElementType, numpy dtype, big endian]
MHD_TYPES = [
    ['MET_SHORT', '<i2', False],
    ['MET_USHORT', '<u2', False],
    ['MET_FLOAT', '<f4', False],
    ['MET_UCHAR', 'u1', False],
    ['MET_SHORT', '>i2', True],
]


@pytest.mark.parametrize('element_type,dtype,msb', MHD_TYPES)
def test_read_mhd_written_by_hand(tmp_path, element_type, dtype, msb):
    values = (np.arange(3 * 4 * 5) % 200).astype(dtype).reshape(3, 4, 5)
    fields = {
        'ObjectType': 'Image',
        'NDims': 3,
        'BinaryData': 'True',
        'BinaryDataByteOrderMSB': str(msb),
        # ITK: TransformMatrix holds the direction of axis 0, 1, 2 in turn;
        # here x -> LPS y, y -> LPS x, z -> LPS z
        'TransformMatrix': '0 1 0 1 0 0 0 0 1',
        'Offset': '-10 -20 -30',
        'ElementSpacing': '0.5 0.25 2',
        'DimSize': '5 4 3',  # x y z
        'ElementType': element_type,
        'ElementDataFile': 'hand.raw',
    }
    volume = read_volume(
        _write_mhd_by_hand(str(tmp_path), fields, values.tobytes()))
    assert volume.shape == (3, 4, 5)
    np.testing.assert_array_equal(volume.array, values.astype(np.float64))
    expected_lps = np.array([[0, 0.25, 0, -10.], [0.5, 0, 0, -20.],
                             [0, 0, 2., -30.], [0, 0, 0, 1]])
    np.testing.assert_allclose(volume.lps_affine, expected_lps)
    assert volume.spacing == (2., 0.25, 0.5)


def test_read_mhd_local_compressed_and_header_size(tmp_path):
    values = np.arange(2 * 3 * 4, dtype='<f4').reshape(2, 3, 4)
    base = {
        'NDims': 3,
        'ElementSpacing': '1 1 1',
        'DimSize': '4 3 2',
        'ElementType': 'MET_FLOAT',
    }
    data = zlib.compress(values.tobytes())
    local = _write_mhd_by_hand(
        str(tmp_path), dict(base, CompressedData='True',
                            CompressedDataSize=len(data),
                            ElementDataFile='LOCAL'),
        data, local=True, name='zipped')
    np.testing.assert_array_equal(read_volume(local).array, values)
    # HeaderSize = -1: the data are the last bytes of the raw file
    header = _write_mhd_by_hand(
        str(tmp_path), dict(base, HeaderSize=-1, ElementDataFile='skip.raw'),
        b'junk header' + values.tobytes(), name='skip')
    np.testing.assert_array_equal(read_volume(header).array, values)


def test_read_mhd_errors(tmp_path):
    good = {
        'NDims': 3,
        'ElementSpacing': '1 1 1',
        'DimSize': '2 2 2',
        'ElementType': 'MET_SHORT',
        'ElementDataFile': 'data.raw',
    }
    data = np.zeros(8, '<i2').tobytes()
    folder = str(tmp_path)
    # missing spacing: refused rather than assumed to be 1 mm
    path = _write_mhd_by_hand(
        folder, {k: v for k, v in good.items() if k != 'ElementSpacing'},
        data, name='nospacing')
    with pytest.raises(ValueError, match='nospacing.mhd has no voxel spacing'):
        read_volume(path)
    # an element type MetaImage does not know
    path = _write_mhd_by_hand(
        folder, dict(good, ElementType='MET_BOGUS'), data, name='bogus')
    with pytest.raises(ValueError, match='Cannot read .*bogus.mhd'):
        read_volume(path)
    # a data file shorter than DimSize says (truncated)
    path = _write_mhd_by_hand(
        folder, dict(good, DimSize='4 4 4'), data, name='short')
    with pytest.raises(ValueError, match='Cannot read .*short.mhd: .*trunc'):
        read_volume(path)
    # only 3D volumes: 2D and 4D are refused, a trailing axis of 1 dropped
    path = _write_mhd_by_hand(
        folder, dict(good, NDims=2, DimSize='2 2', ElementSpacing='1 1'),
        data, name='flat')
    with pytest.raises(ValueError,
                       match=r'flat.mhd holds an array of shape \(2, 2\)'):
        read_volume(path)
    path = _write_mhd_by_hand(
        folder, dict(good, NDims=4, DimSize='2 2 1 2',
                     ElementSpacing='1 1 1 1'), data, name='four')
    with pytest.raises(ValueError,
                       match=r'four.mhd holds an array of shape \(2, 2, 1'):
        read_volume(path)
    path = _write_mhd_by_hand(
        folder, dict(good, NDims=4, DimSize='2 2 2 1',
                     ElementSpacing='1 1 2 1'), data, name='four1')
    assert read_volume(path).spacing == (2., 1., 1.)
    # NaN voxels
    path = _write_mhd_by_hand(
        folder, dict(good, ElementType='MET_FLOAT', ElementDataFile='nan.raw'),
        np.array([0, 1, np.nan, 3, 4, 5, 6, 7], '<f4').tobytes(), name='nan')
    with pytest.raises(ValueError, match='nan.mhd has 1 NaN'):
        read_volume(path)
    # the data file is missing
    path = _write_mhd_by_hand(
        folder, dict(good, ElementDataFile='gone.raw'), b'', name='gone')
    os.remove(os.path.join(folder, 'gone.raw'))
    with pytest.raises(ValueError, match='Cannot read .*gone.mhd'):
        read_volume(path)
    # not a MetaImage header at all
    path = str(tmp_path / 'text.mhd')
    with open(path, 'w') as f:
        f.write('hello world\n')
    with pytest.raises(ValueError, match='Cannot read .*text.mhd'):
        read_volume(path)


def test_read_volume_errors(tmp_path):
    # a path that does not exist
    with pytest.raises(FileNotFoundError, match='missing.nii.gz'):
        read_volume(str(tmp_path / 'missing.nii.gz'))
    # an unknown format
    path = tmp_path / 'notes.txt'
    path.write_text('not a volume')
    with pytest.raises(ValueError, match='Cannot tell the format of .*notes'):
        read_volume(str(path))
    # a NIfTI suffix on garbage: the message names the file
    path = tmp_path / 'broken.nii.gz'
    path.write_bytes(b'\x00' * 400)
    with pytest.raises(ValueError, match='broken.nii.gz'):
        read_volume(str(path))
    # a NRRD without any spacing
    path = str(tmp_path / 'nospacing.nrrd')
    nrrd.write(path, np.zeros((2, 3, 4), np.int16))
    with pytest.raises(ValueError,
                       match='nospacing.nrrd has no voxel spacing'):
        read_volume(path)
    # a NRRD in a space svd_mm does not map to RAS
    path = str(tmp_path / 'scanner.nrrd')
    nrrd.write(
        path, np.zeros((2, 3, 4), np.int16), {
            'space': 'scanner-xyz',
            'space directions': np.eye(3),
            'space origin': np.zeros(3)
        })
    with pytest.raises(ValueError, match="'scanner-xyz' is not supported"):
        read_volume(path)


def test_volume_checks():
    # not (D, H, W)
    with pytest.raises(ValueError, match=r'\(D, H, W\)'):
        Volume(np.zeros((4, 5)), np.eye(4))
    # a singular affine
    with pytest.raises(ValueError, match='non-singular'):
        Volume(np.zeros((2, 2, 2)), np.diag([1., 1., 0., 1.]))
    # writing an array needs its affine
    with pytest.raises(ValueError, match='affine'):
        write_volume(np.zeros((2, 2, 2)), 'x.mhd')


def test_write_mask(crop, tmp_path):
    mask = (crop.array > -400).astype(np.uint8)
    path = write_mask(mask, crop, str(tmp_path / 'mask.nii.gz'))
    back = read_nifti(path)
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, mask)
    np.testing.assert_allclose(back.affine, crop.affine, atol=1e-6)
    # the mask must have the reference's shape
    with pytest.raises(ValueError, match=r'does not match the \(D, H, W\)'):
        write_mask(mask[1:], crop, str(tmp_path / 'bad.nii.gz'))
    # masks are written as NIfTI
    with pytest.raises(ValueError, match='must end with .nii'):
        write_mask(mask, crop, str(tmp_path / 'mask.nrrd'))
    # labels fit uint8
    with pytest.raises(ValueError, match=r'\[0, 255\]'):
        write_mask(mask.astype(np.int32) * 300, crop,
                   str(tmp_path / 'big.nii.gz'))


def _dicom_series(folder, slices=(3, 0, 4, 1, 2), series_uid=None,
                  slope=None, orientation=None, gap=5.0):
    """Copies of pydicom's CT_small.dcm (one real 128x128 CT slice) as a
    series: slice k moved k * gap mm along the slice normal, its pixels
    raised by 10 k, written in a shuffled file order."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid
    os.makedirs(folder, exist_ok=True)
    src = get_testdata_file('CT_small.dcm')
    uid = series_uid or generate_uid()
    for n, k in enumerate(slices):
        ds = pydicom.dcmread(src)
        if orientation is not None:
            ds.ImageOrientationPatient = list(orientation)
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        ds.ImagePositionPatient = [float(v) for v in ipp + k * gap * normal]
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = uid
        pixels = ds.pixel_array.copy()
        pixels += np.int16(10 * k)
        ds.PixelData = pixels.tobytes()
        if slope is not None:
            ds.RescaleSlope = slope
        ds.save_as(os.path.join(folder, f'IM{n:04d}.dcm'))
    return src, uid


def test_read_dicom_series(tmp_path):
    folder = str(tmp_path / 'series')
    src, uid = _dicom_series(folder)
    (tmp_path / 'series' / 'README.txt').write_text('not DICOM')
    volume = read_volume(folder)
    assert volume.format == 'dicom'
    assert volume.shape == (5, 128, 128)
    assert volume.meta['series_uid'] == uid
    assert volume.meta['num_files'] == 5
    assert volume.meta['skipped'] == ['README.txt']
    assert volume.meta['modality'] == 'CT'
    # sorted along the normal: slice k holds the source pixels + 10 k, in HU
    hu = pydicom.dcmread(src).pixel_array.astype(np.float32) - 1024.
    for k in range(5):
        np.testing.assert_array_equal(volume.array[k], hu + 10 * k)
    assert volume.spacing == pytest.approx((5., 0.661468, 0.661468))
    # ImagePositionPatient of the first slice, LPS -> RAS
    np.testing.assert_allclose(volume.origin,
                               [158.135803, 179.035797, -75.699997])
    np.testing.assert_allclose(volume.direction, np.diag([-1., -1., 1.]),
                               atol=1e-6)
    # one file reads as a one-slice volume (spacing from the header)
    single = read_volume(os.path.join(folder, 'IM0001.dcm'))
    assert single.shape == (1, 128, 128)
    assert single.spacing[0] == pytest.approx(5.)


def test_read_dicom_oblique_and_rescale(tmp_path):
    # a sagittal acquisition: rows along LPS y, columns along -z
    orientation = (0., 1., 0., 0., 0., -1.)
    folder = str(tmp_path / 'sagittal')
    _dicom_series(folder, slices=(1, 0, 2), orientation=orientation,
                  slope=2, gap=3.)
    volume = read_dicom_series(folder)
    lps = volume.lps_affine
    np.testing.assert_allclose(lps[:3, 0], [0, 0.661468, 0], atol=1e-6)
    np.testing.assert_allclose(lps[:3, 1], [0, 0, -0.661468], atol=1e-6)
    # k: the normal, cross((0, 1, 0), (0, 0, -1)) = (-1, 0, 0), times 3 mm
    np.testing.assert_allclose(lps[:3, 2], [-3., 0, 0], atol=1e-5)
    assert volume.spacing == pytest.approx((3., 0.661468, 0.661468))
    # RescaleSlope 2: slice 1 - slice 0 = 2 * 10
    np.testing.assert_allclose(volume.array[1] - volume.array[0], 20.)


def test_read_dicom_errors(tmp_path):
    # two series in one folder: the message lists both UIDs
    mixed = str(tmp_path / 'mixed')
    _, uid_a = _dicom_series(mixed, slices=(0, 1))
    other = str(tmp_path / 'other')
    _, uid_b = _dicom_series(other, slices=(0, 1, 2))
    for name in os.listdir(other):
        shutil.copy(os.path.join(other, name),
                    os.path.join(mixed, 'B' + name))
    with pytest.raises(ValueError, match='mixes 2 series') as info:
        read_volume(mixed)
    assert uid_a in str(info.value) and uid_b in str(info.value)
    assert '(3 files)' in str(info.value)
    # ... unless one is picked
    assert read_volume(mixed, series_uid=uid_b).shape == (3, 128, 128)
    # a series missing a slice: the gap is refused
    gappy = str(tmp_path / 'gappy')
    _dicom_series(gappy, slices=(0, 1, 3, 4))
    with pytest.raises(ValueError, match='Non-uniform slice spacing'):
        read_volume(gappy)
    # two files at one position
    twice = str(tmp_path / 'twice')
    _dicom_series(twice, slices=(0, 1, 1))
    with pytest.raises(ValueError, match='same slice position'):
        read_volume(twice)
    # no PixelSpacing: missing spacing, the file is named
    nospacing = str(tmp_path / 'nospacing')
    _dicom_series(nospacing, slices=(0, 1))
    path = os.path.join(nospacing, 'IM0000.dcm')
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    ds.save_as(path)
    with pytest.raises(ValueError, match='IM0000.dcm has no PixelSpacing'):
        read_volume(nospacing)
    # slices of one series on other pixel grids: the file is named
    for tag, value in (('PixelSpacing', [0.5, 0.5]),
                       ('ImageOrientationPatient', [0, 1, 0, 0, 0, -1])):
        ds = pydicom.dcmread(path)
        setattr(ds, tag, value)
        ds.save_as(path)
        with pytest.raises(ValueError,
                           match=f'IM000[01].dcm has another {tag} '):
            read_volume(nospacing)
    # a single slice without SliceThickness / SpacingBetweenSlices
    ds = pydicom.dcmread(os.path.join(twice, 'IM0000.dcm'))
    del ds.SliceThickness
    del ds.SpacingBetweenSlices
    single = str(tmp_path / 'single.dcm')
    ds.save_as(single)
    with pytest.raises(ValueError, match='missing spacing'):
        read_volume(single)
    # a folder without DICOM images
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('hello')
    with pytest.raises(ValueError, match='holds no DICOM image files'):
        read_volume(str(empty))


def test_volume_stem():
    assert volume_stem('/a/b/case.nii.gz') == 'case'
    assert volume_stem('/a/b/case.MHD') == 'case'
    assert volume_stem('/a/series_7/') == 'series_7'


def _pydicom_values(path):
    """pydicom's decode of a file, rescaled, float64 (D, H, W)."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float64)
    pixels = pixels * float(ds.get('RescaleSlope', 1) or 1) + float(
        ds.get('RescaleIntercept', 0) or 0)
    return ds, pixels.reshape((-1, ) + pixels.shape[-2:])


def _pydicom_lps_affine(ds, step):
    """The LPS affine of a single-frame slice by the DICOM standard."""
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = np.cross(iop[:3], iop[3:]) * step
    lps[:3, 3] = [float(v) for v in ds.ImagePositionPatient]
    return lps


# [compressed file, its uncompressed twin]: pydicom's test files
# (MR_small*) and pydicom-data's (MR2_*, a real oblique MR slice)
CODEC_TWINS = [
    ['MR_small_jpeg_ls_lossless.dcm', 'MR_small.dcm'],
    ['MR_small_RLE.dcm', 'MR_small.dcm'],
    ['MR_small_bigendian.dcm', 'MR_small.dcm'],
    ['MR2_J2KR.dcm', 'MR2_UNCR.dcm'],
]


@pytest.mark.parametrize('name,twin', CODEC_TWINS)
def test_read_compressed_dicom(name, twin):
    volume = read_volume(pydicom_test_file(name))
    ds, expected = _pydicom_values(pydicom_test_file(twin))
    syntax = pydicom.dcmread(pydicom_test_file(name)).file_meta
    assert syntax.TransferSyntaxUID != ds.file_meta.TransferSyntaxUID
    assert volume.format == 'dicom' and volume.meta['modality'] == 'MR'
    assert volume.shape == expected.shape
    np.testing.assert_allclose(volume.array, expected, rtol=1e-6)
    step = float(ds.get('SpacingBetweenSlices') or ds.SliceThickness)
    np.testing.assert_allclose(
        volume.lps_affine, _pydicom_lps_affine(ds, step), atol=1e-5)


def test_read_jpeg2000_and_jpeg_lossless_errors():
    # JPEG 2000 pixels decode as pydicom decodes them, but these NM images
    # have no patient geometry: refused, naming the file and the tag
    for name in ('JPEG2000.dcm', 'JPEG-LL.dcm'):
        with pytest.raises(ValueError,
                           match=f'{name} has no ImageOrientationPatient'):
            read_volume(pydicom_test_file(name))
    import SimpleITK as sitk
    for name in ('JPEG2000.dcm', 'emri_small_jpeg_2k_lossless.dcm'):
        path = pydicom_test_file(name)
        decoded = sitk.GetArrayFromImage(sitk.ReadImage(path))
        expected = _pydicom_values(path)[1]
        np.testing.assert_array_equal(
            decoded.reshape(expected.shape), expected)


def test_read_jpeg_ls_series(tmp_path):
    # three JPEG-LS slices written in shuffled order, 2 mm apart
    source = pydicom_test_file('MR_small_jpeg_ls_lossless.dcm')
    folder = str(tmp_path / 'jpeg_ls')
    files = dicom_series_from(source, folder, slices=(2, 0, 1), gap=2.)
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == \
        pydicom.uid.JPEGLSLossless
    volume = read_volume(folder)
    ds, twin = _pydicom_values(pydicom_test_file('MR_small.dcm'))
    assert volume.shape == (3, 64, 64)
    np.testing.assert_array_equal(volume.array, np.repeat(twin, 3, axis=0))
    np.testing.assert_allclose(
        volume.lps_affine, _pydicom_lps_affine(ds, 2.), atol=1e-5)
    # masks go back in the input's exact geometry
    path = write_mask((volume.array > 1000).astype(np.uint8), volume,
                      str(tmp_path / 'mask.nii.gz'))
    mask = read_volume(path)
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-6)
    assert mask.shape == volume.shape


def test_read_corrupt_and_truncated_files(tmp_path, crop):
    # a DICOM slice cut in its pixel data: the file is named
    source = pydicom_test_file('MR_small.dcm')
    folder = tmp_path / 'cut'
    files = dicom_series_from(source, str(folder), slices=(0, 1))
    with open(files[1], 'r+b') as f:
        f.truncate(os.path.getsize(files[1]) - 4000)
    with pytest.raises(ValueError, match='Cannot read .*cut.IM0001.dcm'):
        read_volume(str(folder))
    with pytest.raises(ValueError, match='Cannot read .*cut.IM0001.dcm'):
        read_volume(files[1])
    # a truncated gzip NRRD
    path = write_volume(crop, str(tmp_path / 'crop.nrrd'), dtype=np.int16)
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match='Cannot read .*crop.nrrd'):
        read_volume(path)


def test_write_volume_leaves_no_temporary_files(tmp_path, crop):
    # a dtype ITK cannot write: nothing is written
    with pytest.raises(TypeError, match='float16'):
        write_volume(crop, str(tmp_path / 'bad.mhd'), dtype=np.float16)
    assert os.listdir(tmp_path) == []
    write_volume(crop, str(tmp_path / 'good.mhd'), dtype=np.int16)
    assert sorted(os.listdir(tmp_path)) == ['good.mhd', 'good.raw']
