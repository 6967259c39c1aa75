"""LoadVolumeArray gives the arrays of the file loaders it replaces."""
import os

import cv2
import numpy as np
import pytest

from svd_mm.datasets.transforms.load_volume_array import LoadVolumeArray
from tests.helpers.data_cache import fetch_pyradiomics_ct
from svd_mm.utils.medical_io import Volume, read_volume, write_volume


@pytest.fixture(scope='module')
def crop():
    """A (12, 40, 44) crop of real CT (lung1) with its geometry."""
    case = fetch_pyradiomics_ct()[0]
    volume = read_volume(case['image'])
    origin = (26, 190, 200)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.dhw_to_ras(origin)
    return Volume(volume.array[26:38, 190:230, 200:244], affine)


# [preprocess, (D, H, W) of img]: 5 mm slices resampled (or not)
PREPROCESS_CASES = [
    [dict(window=(-200, 250), spacing_z=1.0), (56, 40, 44)],
    [dict(window=(-1000, 400), spacing_z=2.5), (23, 40, 44)],
    [dict(window=(-1000, 400), spacing_z=None), (12, 40, 44)],
]


@pytest.mark.parametrize('preprocess,shape', PREPROCESS_CASES)
def test_volume_equals_nifti_loader(crop, tmp_path, preprocess, shape):
    from svd_mm.datasets.transforms.load_volume_nifti import LoadVolumeNifti
    path = write_volume(crop, str(tmp_path / 'ct.nii.gz'), dtype=np.int16)
    ref = LoadVolumeNifti(preprocess=preprocess)(dict(img_path=path))
    out = LoadVolumeArray(preprocess=preprocess)(dict(volume=crop))
    assert out['img'].shape == (1, ) + shape
    assert out['img'].dtype == ref['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['img'], ref['img'])
    assert out['img_shape'] == out['ori_shape'] == shape
    np.testing.assert_allclose(out['affine'], ref['affine'], atol=1e-6)
    assert out['spacing'] == pytest.approx(ref['spacing'])
    assert out['original_geometry']['shape'] == [12, 40, 44]


def test_volume_without_preprocess(crop):
    out = LoadVolumeArray()(dict(volume=crop.array, affine=crop.affine))
    assert out['img'].dtype == np.float32
    np.testing.assert_array_equal(out['img'][0], crop.array)
    out = LoadVolumeArray(
        preprocess=dict(window=(-1000, 400), spacing_z=None),
        to_float32=True)(dict(volume=crop))
    assert out['img'].dtype == np.float32


@pytest.mark.parametrize('key_slice', [0, 1, 6, 11])
def test_stack_equals_deeplesion_loader(crop, tmp_path, key_slice):
    """The same stack as LoadDeepLesionSlices on the volume's slices
    written as DeepLesion 16-bit PNGs (HU + 32768)."""
    import mmdet  # noqa: F401

    from svd_mm.datasets.transforms.load_deeplesion_slices import \
        LoadDeepLesionSlices
    folder = tmp_path / 'series'
    folder.mkdir()
    for k, hu in enumerate(crop.array):
        cv2.imwrite(
            str(folder / f'{k:03d}.png'), (hu + 32768).astype(np.uint16))
    kwargs = dict(num_slices=9, slice_spacing=2.5, hu_window=(-1024, 1050))
    ref = LoadDeepLesionSlices(**kwargs)(
        dict(
            img_path=os.path.join(folder, f'{key_slice:03d}.png'),
            slice_intv=5.0,
            slice_range=(0, 11)))
    out = LoadVolumeArray(**kwargs)(dict(volume=crop, key_slice=key_slice))
    assert out['img'].shape == (40, 44, 9)
    # one interpolation (volume_io.resample_axis): the same float32 values
    np.testing.assert_array_equal(out['img'], ref['img'])
    np.testing.assert_array_equal(out['slice_positions'],
                                  ref['slice_positions'])
    assert out['img_shape'] == (40, 44)
    assert out['slice_intv'] == 5.0 and out['slice_range'] == (0, 11)


def test_errors(crop):
    # the volume must be in the results
    with pytest.raises(KeyError, match="'volume'"):
        LoadVolumeArray()(dict(img=crop.array))
    # an array volume needs its affine
    with pytest.raises(KeyError, match="'affine'"):
        LoadVolumeArray()(dict(volume=crop.array))
    # (D, H, W) only
    with pytest.raises(ValueError, match=r'\(D, H, W\)'):
        LoadVolumeArray()(dict(volume=crop.array[0], affine=crop.affine))
    # an odd number of slices
    with pytest.raises(ValueError, match='odd'):
        LoadVolumeArray(num_slices=8)
    # preprocess keys of LoadVolumeNifti only
    with pytest.raises(KeyError, match='spacing'):
        LoadVolumeArray(preprocess=dict(spacing=1.0))
    # preprocess is for whole volumes
    with pytest.raises(ValueError, match='hu_window'):
        LoadVolumeArray(preprocess=dict(window=(0, 1)), num_slices=3)
    # a stack needs its key slice ...
    with pytest.raises(KeyError, match='key_slice'):
        LoadVolumeArray(num_slices=3)(dict(volume=crop))
    # ... inside the volume
    with pytest.raises(ValueError, match='outside the 12 slices'):
        LoadVolumeArray(num_slices=3)(dict(volume=crop, key_slice=12))
    assert 'num_slices=3' in repr(LoadVolumeArray(num_slices=3))
