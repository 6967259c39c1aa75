"""svd_mm.utils.volume_io: Volumes in (D, H, W) with their geometry, NIfTI,
LiTS preprocessing and writing predictions back onto the original grid, on
real chest CT."""
import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from svd_mm.utils.volume_io import (Volume, interpolation_weights,
                                    preprocess_ct_image, preprocess_label,
                                    read_nifti, resample_axis,
                                    resample_slice_spacing,
                                    resample_to_geometry, same_geometry,
                                    save_prediction_nifti, window_intensity,
                                    write_nifti)
from tests.helpers.lits_layout import build_lits_layout_from_ct


@pytest.fixture(scope='module')
def raw_cases(tmp_path_factory):
    """Four LiTS-named raw cases cut from the two pyradiomics CTs."""
    return build_lits_layout_from_ct(str(tmp_path_factory.mktemp('raw')))


def _dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_read_nifti_layout_and_geometry(raw_cases):
    case = raw_cases['cases'][0]
    volume = read_nifti(case['image'])
    assert volume.source == case['image'] and volume.format == 'nifti'
    img = nib.load(case['image'])
    # (D, H, W) = (k, j, i) of the file
    assert volume.shape == img.shape[::-1] == tuple(case['shape'])
    array = volume.array
    np.testing.assert_array_equal(array,
                                  np.asarray(img.dataobj).transpose(2, 1, 0))
    assert array.flags.c_contiguous
    assert array.dtype == np.int16 and array.min() == -1024
    np.testing.assert_allclose(volume.affine, img.affine)
    # 5 mm slices, 0.5703125 mm pixels (lung1 at full resolution)
    np.testing.assert_allclose(volume.spacing, [5., 0.5703125, 0.5703125])
    # RAS from LPS: the in-plane axes point the other way
    assert volume.affine[0, 0] < 0 and volume.affine[1, 1] < 0
    # the geometry is the volume's grid in JSON form, and back
    geometry = json.loads(json.dumps(volume.geometry))
    assert geometry['shape'] == list(volume.shape)
    np.testing.assert_allclose(geometry['spacing'], volume.spacing)
    assert same_geometry(geometry, volume.geometry, atol=0)
    np.testing.assert_array_equal(
        resample_to_geometry(volume, geometry).array, array)


@pytest.mark.parametrize('suffix', ['.nii', '.nii.gz'])
def test_write_read_round_trip(tmp_path, suffix):
    affine = np.array([[0., -0.7, 0., 10.], [-0.8, 0., 0., 20.],
                       [0., 0., 2.5, -30.], [0., 0., 0., 1.]])
    array = np.random.RandomState(0).randint(0, 3, (5, 7, 9)).astype(
        np.uint8)
    path = write_nifti(Volume(array, affine), str(tmp_path / f'sub/a{suffix}'))
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, affine)
    # spacing (D, H, W): the k, j, i columns of a permuting affine
    np.testing.assert_allclose(back.spacing, [2.5, 0.7, 0.8])
    assert back.array.dtype == np.uint8


def test_read_nifti_errors(tmp_path):
    # missing file
    with pytest.raises(FileNotFoundError, match='missing.nii'):
        read_nifti(str(tmp_path / 'missing.nii'))
    # empty file
    empty = tmp_path / 'empty.nii'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='empty.nii is empty'):
        read_nifti(str(empty))
    # not a NIfTI file
    garbage = tmp_path / 'garbage.nii.gz'
    garbage.write_bytes(gzip.compress(b'not a nifti file' * 30))
    with pytest.raises(ValueError, match='garbage.nii.gz'):
        read_nifti(str(garbage))
    # NaN voxels
    data = np.zeros((4, 5, 6), np.float32)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / 'nan.nii'))
    with pytest.raises(ValueError, match=r'nan.nii has 1 NaN'):
        read_nifti(str(tmp_path / 'nan.nii'))
    # a 2D image is not a volume
    nib.save(
        nib.Nifti1Image(np.zeros((4, 5), np.int16), np.eye(4)),
        str(tmp_path / 'flat.nii'))
    with pytest.raises(ValueError, match='flat.nii holds an array of shape'):
        read_nifti(str(tmp_path / 'flat.nii'))
    # trailing singleton axes are dropped
    nib.save(
        nib.Nifti1Image(np.zeros((4, 5, 6, 1), np.int16), np.eye(4)),
        str(tmp_path / 'four.nii'))
    assert read_nifti(str(tmp_path / 'four.nii')).shape == (6, 5, 4)


def test_write_nifti_errors(tmp_path):
    # wrong suffix
    with pytest.raises(ValueError, match='must end with .nii'):
        write_nifti(Volume(np.zeros((2, 3, 4)), np.eye(4)),
                    str(tmp_path / 'a.npy'))
    # a Volume, not an array
    with pytest.raises(TypeError, match='writes a Volume'):
        write_nifti(np.zeros((2, 3, 4)), str(tmp_path / 'a.nii'))
    # a Volume is (D, H, W) on a non-singular affine
    with pytest.raises(ValueError, match=r'\(D, H, W\) array'):
        Volume(np.zeros((2, 3)), np.eye(4))
    with pytest.raises(ValueError, match='singular'):
        Volume(np.zeros((2, 3, 4)), np.zeros((4, 4)))


def test_window_intensity():
    hu = np.array([-3000, -200, -199, 25, 250, 4000], np.int16)
    out = window_intensity(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, 255 / 450, 127.5, 255, 255],
                               rtol=1e-6)
    # the window must be ordered
    with pytest.raises(ValueError, match='low < high'):
        window_intensity(hu, (250, -200))


# [old spacing, new spacing, old slices, new slices]
SPACING_TABLE = [
    (5., 1., 9, 41),
    (2.5, 1., 4, 8),
    (0.7, 1., 10, 7),  # finer than 1 mm: fewer slices
    (1., 1., 6, 6),
    (5., 1.5, 9, 27),
]


@pytest.mark.parametrize('old, new, num_old, num_new', SPACING_TABLE)
def test_resample_slice_spacing(old, new, num_old, num_new):
    affine = np.diag([-0.6, -0.6, old, 1.])
    affine[:3, 3] = [5., 6., -100.]
    # a linear ramp along D is reproduced exactly by linear interpolation
    ramp = np.broadcast_to(
        np.arange(num_old, dtype=np.float32)[:, None, None] * old,
        (num_old, 3, 4))
    volume = Volume(ramp, affine, source='ramp')
    out = resample_slice_spacing(volume, new)
    assert out.shape == (num_new, 3, 4) and out.array.dtype == np.float32
    assert out.source == 'ramp'
    np.testing.assert_allclose(out.array[:, 0, 0], np.arange(num_new) * new,
                               atol=1e-4)
    np.testing.assert_allclose(out.spacing, [new, 0.6, 0.6])
    # same origin (first slice) and in-plane axes
    np.testing.assert_allclose(out.affine[:, [0, 1, 3]], affine[:, [0, 1, 3]])
    # nearest keeps the dtype
    labels = resample_slice_spacing(
        volume.with_array((ramp > old).astype(np.uint8)), new, order=0)
    assert labels.array.dtype == np.uint8 and labels.shape == (num_new, 3, 4)


def test_resample_slice_spacing_errors():
    volume = Volume(np.zeros((3, 4, 5)), np.eye(4))
    # spacing must be positive
    with pytest.raises(ValueError, match='spacing_z must be > 0'):
        resample_slice_spacing(volume, 0.)
    # only nearest and linear
    with pytest.raises(ValueError, match='order must be 0 or 1'):
        resample_slice_spacing(volume, 1., order=3)


def test_resample_axis_real_ct(raw_cases):
    """The one slice interpolation, along any axis of real CT (int16)."""
    image = read_nifti(raw_cases['cases'][2]['image']).array  # (17, 96, 96)
    positions = np.array([-0.7, -0.2, 0., 2.5, 3.25, 16., 16.4, 17.])
    out = resample_axis(image, positions)
    assert out.dtype == np.float32 and out.shape == (8, 96, 96)
    # whole positions are the slices; clamped (edge) beyond the ends
    for k, index in ((0, 0), (1, 0), (2, 0), (5, 16), (6, 16), (7, 16)):
        np.testing.assert_array_equal(out[k], image[index])
    # in between: (1 - w) * lower + w * upper in float32
    lower, upper = image[3].astype(np.float32), image[4].astype(np.float32)
    np.testing.assert_array_equal(
        out[4], lower * np.float32(0.75) + upper * np.float32(0.25))
    np.testing.assert_allclose(out[3], (image[2] + image[3]) / 2., rtol=0,
                               atol=1e-3)
    # any axis gives what axis 0 gives on the moved array; chunks do not
    # change the values
    np.testing.assert_array_equal(
        resample_axis(image.transpose(1, 2, 0), positions, axis=2,
                      chunk_size=3), out.transpose(1, 2, 0))
    # 'constant': more than half a voxel outside -> cval
    const = resample_axis(image, positions, outside='constant', cval=-5)
    np.testing.assert_array_equal(const[[1, 2, 3, 4, 5, 6]],
                                  out[[1, 2, 3, 4, 5, 6]])
    assert (const[[0, 7]] == -5).all()
    # nearest keeps the dtype; value_fn then rounding into the output dtype
    nearest = resample_axis(image, [0.49, 0.5, 16.6], order=0)
    assert nearest.dtype == np.int16
    np.testing.assert_array_equal(nearest, image[[0, 1, 16]])
    windowed = resample_axis(image, positions, value_fn=window_intensity,
                             dtype=np.uint8)
    np.testing.assert_array_equal(
        windowed[2], np.rint(window_intensity(image[0])).astype(np.uint8))
    # on the grid already: a copy, whatever the order
    for order in (0, 1):
        same = resample_axis(image.astype(np.float32), np.arange(17),
                             order=order)
        np.testing.assert_array_equal(same, image)
    assert not np.shares_memory(resample_axis(image, np.arange(17), 0, 0),
                                image)
    with pytest.raises(ValueError, match="outside must be 'edge'"):
        resample_axis(image, positions, outside='wrap')


def test_interpolation_weights_name_only_needed_slices():
    lower, upper, weight = interpolation_weights([3., 3.5, 4., 4.999])
    assert lower.tolist() == [3, 3, 4, 4] and upper.tolist() == [3, 4, 4, 5]
    assert weight.dtype == np.float32
    np.testing.assert_allclose(weight, [0, 0.5, 0, 0.999], rtol=1e-6)


def test_preprocess_real_ct(raw_cases):
    case = raw_cases['cases'][2]  # lung2, full resolution
    image, label = read_nifti(case['image']), read_nifti(case['label'])
    prepared = preprocess_ct_image(image)
    assert prepared.array.dtype == np.uint8
    # 17 slices 5 mm apart -> 81 slices 1 mm apart
    assert prepared.shape == (81, 96, 96)
    np.testing.assert_allclose(prepared.spacing[0], 1.)
    # the original slices are kept: every 5th slice is the windowed CT
    expected = np.rint(window_intensity(image.array)).astype(np.uint8)
    np.testing.assert_array_equal(prepared.array[::5], expected)
    # air (-1024) -> 0, dense bone (> 250) -> 255
    assert prepared.array.min() == 0 and prepared.array.max() == 255
    # without resampling: the window only, on the same grid
    windowed = preprocess_ct_image(image, spacing_z=None)
    np.testing.assert_array_equal(windowed.array, expected)
    assert windowed.geometry == image.geometry
    mask = preprocess_label(label)
    assert mask.geometry == prepared.geometry
    mask = mask.array
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    # labels 1 and 2 are both liver; each 5 mm slice becomes 5 slices
    assert mask.sum() == 5 * (case['num_liver'] + case['num_tumour'])


def test_preprocess_label_errors():
    # an image passed as label, named by the volume's source
    with pytest.raises(
            ValueError, match=r'x.nii holds label values \[-1000\] outside'):
        preprocess_label(Volume(np.full((2, 2, 2), -1000), np.eye(4), 'x.nii'))
    # fractional labels
    with pytest.raises(ValueError, match='label holds non-integer'):
        preprocess_label(Volume(np.full((2, 2, 2), 0.5), np.eye(4)))
    # other labels may be allowed explicitly
    mask = preprocess_label(
        Volume(np.full((2, 2, 2), 7), np.eye(4)), foreground_labels=(7, ),
        spacing_z=None, allowed_labels=None)
    assert mask.array.sum() == 8


def test_resample_to_geometry_axis_aligned_and_oblique():
    rng = np.random.RandomState(0)
    array = rng.randint(0, 5, (6, 7, 8)).astype(np.uint8)
    volume = Volume(array, np.diag([2., 3., 4., 1.]))
    # the same grid: identity
    out = resample_to_geometry(volume, volume.geometry)
    np.testing.assert_array_equal(out.array, array)
    assert out.array.dtype == np.uint8 and out.geometry == volume.geometry
    # a sub-grid shifted by one voxel along each axis
    shifted = np.diag([2., 3., 4., 1.])
    shifted[:3, 3] = [2., 3., 4.]  # (i, j, k) + 1
    dst = Volume(np.zeros((5, 6, 7)), shifted).geometry
    out = resample_to_geometry(volume, dst)
    np.testing.assert_array_equal(out.array, array[1:, 1:, 1:])
    assert out.geometry == dst
    # outside the source grid: cval
    far = Volume(np.zeros((8, 7, 8)), volume.affine).geometry
    out = resample_to_geometry(volume, far, cval=9).array
    np.testing.assert_array_equal(out[:6], array)
    assert (out[6:] == 9).all()
    # a rotated (permuted) destination goes through scipy and still maps
    # every voxel to the same world point
    permuted = np.array([[0., 2., 0., 0.], [3., 0., 0., 0.],
                         [0., 0., 4., 0.], [0., 0., 0., 1.]])
    dst = Volume(np.zeros((6, 8, 7)), permuted).geometry
    out = resample_to_geometry(volume, dst)
    np.testing.assert_array_equal(out.array, array.transpose(0, 2, 1))
    # the target is a grid (a geometry dict), checked in one place
    with pytest.raises(TypeError, match="dict with 'affine' and 'shape'"):
        resample_to_geometry(volume, volume)
    with pytest.raises(ValueError, match='destination geometry affine'):
        resample_to_geometry(volume, dict(affine=np.zeros((4, 4)),
                                          shape=[2, 2, 2]))


def test_save_prediction_back_on_original_grid(raw_cases, tmp_path):
    """A mask made on the prepared 1 mm grid, written back, overlays the
    raw label: same shape and affine, and the same voxels (nearest slice up
    then down is exact for 5 mm -> 1 mm)."""
    for case in raw_cases['cases']:
        label = read_nifti(case['label'])
        mask = preprocess_label(label)
        path = str(tmp_path / f"{case['case_id']}_pred.nii.gz")
        written = save_prediction_nifti(mask, path, label.geometry)
        back = read_nifti(path)
        assert back.shape == label.shape == written.shape
        np.testing.assert_allclose(back.affine, label.affine)
        np.testing.assert_array_equal(back.array, written.array)
        assert _dice(back.array, label.array) == 1.0
    # a lossy grid (7 mm slices from 5 mm ones) still overlaps well
    label = read_nifti(raw_cases['cases'][2]['label'])
    coarse = preprocess_label(label, spacing_z=7.)
    back = save_prediction_nifti(coarse, str(tmp_path / 'c.nii'),
                                 label.geometry)
    assert 0.9 < _dice(back.array, label.array) < 1.0
    # without an original grid: written on its own
    back = save_prediction_nifti(coarse, str(tmp_path / 'd.nii'))
    assert back.geometry == coarse.geometry


def test_hu_windows_are_named_once():
    """The datasets' HU windows are typed only in volume_io; every other
    module of svd_mm and tools refers to the named constants."""
    import ast
    import pathlib

    from svd_mm.utils import volume_io
    windows = {
        volume_io.LITS_HU_WINDOW, volume_io.DEEPLESION_HU_WINDOW,
        volume_io.LIDC_RELEASE_WINDOW
    }
    assert len(windows) == 3
    root = pathlib.Path(volume_io.__file__).parents[2]
    literals = []
    for folder in ('svd_mm', 'tools'):
        for path in sorted((root / folder).rglob('*.py')):
            if path.name == 'volume_io.py':
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Tuple) and len(node.elts) == 2:
                    try:
                        value = tuple(float(v) for v in ast.literal_eval(node))
                    except (ValueError, TypeError):
                        continue
                    if value in windows:
                        literals.append(f'{path.relative_to(root)}:'
                                        f'{node.lineno}')
    assert not literals, f'HU window typed again at {literals}'
