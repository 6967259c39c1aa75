"""svd_mm.utils.volume_io: NIfTI in (D, H, W), geometry, LiTS preprocessing
and writing predictions back onto the original grid, on real chest CT."""
import gzip

import nibabel as nib
import numpy as np
import pytest
import torch

from svd_mm.testing.lits_layout import build_lits_layout_from_ct
from svd_mm.utils.volume_io import (interpolation_weights, make_geometry,
                                    preprocess_ct_image, preprocess_label,
                                    read_nifti, resample_axis,
                                    resample_slice_spacing,
                                    resample_to_geometry,
                                    save_prediction_nifti, window_intensity,
                                    write_nifti)


@pytest.fixture(scope='module')
def raw_cases(tmp_path_factory):
    """Four LiTS-named raw cases cut from the two pyradiomics CTs."""
    return build_lits_layout_from_ct(str(tmp_path_factory.mktemp('raw')))


def _dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_read_nifti_layout_and_geometry(raw_cases):
    case = raw_cases['cases'][0]
    volume, geometry = read_nifti(case['image'])
    img = nib.load(case['image'])
    # (D, H, W) = (k, j, i) of the file
    assert volume.shape == img.shape[::-1] == tuple(case['shape'])
    np.testing.assert_array_equal(volume,
                                  np.asarray(img.dataobj).transpose(2, 1, 0))
    assert volume.flags.c_contiguous
    assert volume.dtype == np.int16 and volume.min() == -1024
    assert geometry['shape'] == list(volume.shape)
    np.testing.assert_allclose(geometry['affine'], img.affine)
    # 5 mm slices, 0.5703125 mm pixels (lung1 at full resolution)
    np.testing.assert_allclose(geometry['spacing'], [5., 0.5703125, 0.5703125])
    # RAS from LPS: the in-plane axes point the other way
    assert geometry['affine'][0][0] < 0 and geometry['affine'][1][1] < 0


@pytest.mark.parametrize('suffix', ['.nii', '.nii.gz'])
def test_write_read_round_trip(tmp_path, suffix):
    affine = np.array([[0., -0.7, 0., 10.], [-0.8, 0., 0., 20.],
                       [0., 0., 2.5, -30.], [0., 0., 0., 1.]])
    volume = np.random.RandomState(0).randint(0, 3, (5, 7, 9)).astype(
        np.uint8)
    path = write_nifti(volume, affine, str(tmp_path / f'sub/a{suffix}'))
    back, geometry = read_nifti(path)
    np.testing.assert_array_equal(back, volume)
    np.testing.assert_allclose(geometry['affine'], affine)
    # spacing (D, H, W): the k, j, i columns of a permuting affine
    np.testing.assert_allclose(geometry['spacing'], [2.5, 0.7, 0.8])
    assert back.dtype == np.uint8


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
    assert read_nifti(str(tmp_path / 'four.nii'))[0].shape == (6, 5, 4)


def test_write_nifti_errors(tmp_path):
    # wrong suffix
    with pytest.raises(ValueError, match='must end with .nii'):
        write_nifti(np.zeros((2, 3, 4)), np.eye(4), str(tmp_path / 'a.npy'))
    # not (D, H, W)
    with pytest.raises(ValueError, match=r'\(D, H, W\) volume'):
        write_nifti(np.zeros((2, 3)), np.eye(4), str(tmp_path / 'a.nii'))
    # singular affine
    with pytest.raises(ValueError, match='singular'):
        write_nifti(
            np.zeros((2, 3, 4)), np.zeros((4, 4)), str(tmp_path / 'a.nii'))


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
    geometry = make_geometry(affine, (num_old, 3, 4))
    # a linear ramp along D is reproduced exactly by linear interpolation
    volume = np.broadcast_to(
        np.arange(num_old, dtype=np.float32)[:, None, None] * old,
        (num_old, 3, 4))
    out, new_geometry = resample_slice_spacing(volume, geometry, new)
    assert out.shape == (num_new, 3, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], np.arange(num_new) * new,
                               atol=1e-4)
    assert new_geometry['shape'] == [num_new, 3, 4]
    np.testing.assert_allclose(new_geometry['spacing'], [new, 0.6, 0.6])
    # same origin (first slice) and in-plane axes
    np.testing.assert_allclose(
        np.asarray(new_geometry['affine'])[:, [0, 1, 3]], affine[:, [0, 1, 3]])
    # nearest keeps the dtype
    labels, _ = resample_slice_spacing(
        (volume > old).astype(np.uint8), geometry, new, order=0)
    assert labels.dtype == np.uint8 and labels.shape == (num_new, 3, 4)


def test_resample_slice_spacing_errors():
    geometry = make_geometry(np.eye(4), (3, 4, 5))
    # spacing must be positive
    with pytest.raises(ValueError, match='spacing_z must be > 0'):
        resample_slice_spacing(np.zeros((3, 4, 5)), geometry, 0.)
    # only nearest and linear
    with pytest.raises(ValueError, match='order must be 0 or 1'):
        resample_slice_spacing(np.zeros((3, 4, 5)), geometry, 1., order=3)
    # the array must match its geometry
    with pytest.raises(ValueError, match='does not match'):
        resample_slice_spacing(np.zeros((4, 4, 5)), geometry, 1.)


def test_resample_axis_real_ct(raw_cases):
    """The one slice interpolation, along any axis of real CT (int16)."""
    image, _ = read_nifti(raw_cases['cases'][2]['image'])  # (17, 96, 96)
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
    with pytest.raises(ValueError, match="outside must be 'edge'"):
        resample_axis(image, positions, outside='wrap')


def test_interpolation_weights_name_only_needed_slices():
    lower, upper, weight = interpolation_weights([3., 3.5, 4., 4.999])
    assert lower.tolist() == [3, 3, 4, 4] and upper.tolist() == [3, 4, 4, 5]
    assert weight.dtype == np.float32
    np.testing.assert_allclose(weight, [0, 0.5, 0, 0.999], rtol=1e-6)


def test_preprocess_real_ct(raw_cases):
    case = raw_cases['cases'][2]  # lung2, full resolution
    image, geometry = read_nifti(case['image'])
    label, label_geometry = read_nifti(case['label'])
    prepared, new_geometry = preprocess_ct_image(image, geometry)
    assert prepared.dtype == np.uint8
    # 17 slices 5 mm apart -> 81 slices 1 mm apart
    assert prepared.shape == (81, 96, 96)
    np.testing.assert_allclose(new_geometry['spacing'][0], 1.)
    # the original slices are kept: every 5th slice is the windowed CT
    expected = np.rint(window_intensity(image)).astype(np.uint8)
    np.testing.assert_array_equal(prepared[::5], expected)
    # air (-1024) -> 0, dense bone (> 250) -> 255
    assert prepared.min() == 0 and prepared.max() == 255
    mask, mask_geometry = preprocess_label(label, label_geometry)
    assert mask_geometry == new_geometry
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    # labels 1 and 2 are both liver; each 5 mm slice becomes 5 slices
    assert mask.sum() == 5 * (case['num_liver'] + case['num_tumour'])


def test_preprocess_label_errors():
    geometry = make_geometry(np.eye(4), (2, 2, 2))
    # an image passed as label
    with pytest.raises(
            ValueError, match=r'x.nii holds label values \[-1000\] outside'):
        preprocess_label(
            np.full((2, 2, 2), -1000), geometry, source='x.nii')
    # fractional labels
    with pytest.raises(ValueError, match='non-integer'):
        preprocess_label(np.full((2, 2, 2), 0.5), geometry)
    # shape mismatch
    with pytest.raises(ValueError, match='does not match'):
        preprocess_label(np.zeros((3, 2, 2)), geometry)
    # other labels may be allowed explicitly
    mask, _ = preprocess_label(
        np.full((2, 2, 2), 7), geometry, foreground_labels=(7, ),
        spacing_z=None, allowed_labels=None)
    assert mask.sum() == 8


def test_resample_to_geometry_axis_aligned_and_oblique():
    rng = np.random.RandomState(0)
    volume = rng.randint(0, 5, (6, 7, 8)).astype(np.uint8)
    src = make_geometry(np.diag([2., 3., 4., 1.]), volume.shape)
    # the same grid: identity
    np.testing.assert_array_equal(
        resample_to_geometry(volume, src, src), volume)
    # a sub-grid shifted by one voxel along each axis
    shifted = np.diag([2., 3., 4., 1.])
    shifted[:3, 3] = [2., 3., 4.]  # (i, j, k) + 1
    dst = make_geometry(shifted, (5, 6, 7))
    np.testing.assert_array_equal(
        resample_to_geometry(volume, src, dst), volume[1:, 1:, 1:])
    # outside the source grid: cval
    far = make_geometry(np.diag([2., 3., 4., 1.]), (8, 7, 8))
    out = resample_to_geometry(volume, src, far, cval=9)
    np.testing.assert_array_equal(out[:6], volume)
    assert (out[6:] == 9).all()
    # a rotated (permuted) destination goes through scipy and still maps
    # every voxel to the same world point
    permuted = np.array([[0., 2., 0., 0.], [3., 0., 0., 0.],
                         [0., 0., 4., 0.], [0., 0., 0., 1.]])
    dst = make_geometry(permuted, (6, 8, 7))
    out = resample_to_geometry(volume, src, dst)
    np.testing.assert_array_equal(out, volume.transpose(0, 2, 1))


def test_save_prediction_back_on_original_grid(raw_cases, tmp_path):
    """A mask made on the prepared 1 mm grid, written back, overlays the
    raw label: same shape and affine, and the same voxels (nearest slice up
    then down is exact for 5 mm -> 1 mm)."""
    for case in raw_cases['cases']:
        label, original = read_nifti(case['label'])
        mask, prepared = preprocess_label(label, original)
        path = str(tmp_path / f"{case['case_id']}_pred.nii.gz")
        written = save_prediction_nifti(
            torch.from_numpy(mask)[None], prepared, path, original)
        back, geometry = read_nifti(path)
        assert back.shape == label.shape
        np.testing.assert_allclose(geometry['affine'], original['affine'])
        np.testing.assert_array_equal(back, written)
        assert _dice(back, label) == 1.0
    # a lossy grid (7 mm slices from 5 mm ones) still overlaps well
    label, original = read_nifti(raw_cases['cases'][2]['label'])
    mask, coarse = preprocess_label(label, original, spacing_z=7.)
    back = save_prediction_nifti(mask, coarse, str(tmp_path / 'c.nii'),
                                 original)
    assert 0.9 < _dice(back, label) < 1.0
    # predictions must be (D, H, W) or (1, D, H, W)
    with pytest.raises(ValueError, match=r'\(1, D, H, W\)'):
        save_prediction_nifti(mask[None, None], coarse,
                              str(tmp_path / 'd.nii'))


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
