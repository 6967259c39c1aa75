"""LoadVolumeNifti on LiTS-named real chest CTs: raw volumes preprocessed
on the fly give exactly the files of prepare_lits.py (one code path)."""
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from mmengine.registry import TRANSFORMS

from svd_mm.datasets.transforms import LoadVolumeNifti
from svd_mm.testing.tools import load_script
from svd_mm.testing.lits_layout import build_lits_layout_from_ct
from svd_mm.utils.volume_io import read_nifti

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / 'tools' / 'dataset_converters' / 'prepare_lits.py'
prepare = load_script(SCRIPT)

PREPROCESS = dict(window=(-200, 250), spacing_z=1.0)


@pytest.fixture(scope='module')
def lits(tmp_path_factory):
    raw = tmp_path_factory.mktemp('raw')
    cases = build_lits_layout_from_ct(str(raw))['cases']
    out = tmp_path_factory.mktemp('prepared')
    prepare.main([str(raw), str(out)])
    return cases, out


def test_registered():
    assert TRANSFORMS.get('LoadVolumeNifti') is LoadVolumeNifti


@pytest.mark.parametrize('index', [0, 3])
def test_raw_on_the_fly_equals_prepared(lits, index):
    cases, out = lits
    case = cases[index]
    number = case['case_id'].split('-')[1]
    raw = LoadVolumeNifti(with_seg=True, preprocess=PREPROCESS)(
        dict(img_path=case['image'], seg_map_path=case['label']))
    # the dataset passes the settings through the results instead
    raw_from_results = LoadVolumeNifti(with_seg=True)(
        dict(
            img_path=case['image'],
            seg_map_path=case['label'],
            preprocess=PREPROCESS))
    prepared = LoadVolumeNifti(with_seg=True)(
        dict(
            img_path=str(out / 'images' / f"{case['case_id']}.nii"),
            seg_map_path=str(out / 'labels' / f'segmentation-{number}.nii'),
            original_geometry=read_nifti(case['image']).geometry))
    num_slices = (case['shape'][0] - 1) * 5 + 1
    for results in (raw, raw_from_results, prepared):
        assert results['img'].shape == (1, num_slices, 96, 96)
        assert results['img'].dtype == np.uint8
        assert results['img_shape'] == (num_slices, 96, 96)
        assert results['ori_shape'] == (num_slices, 96, 96)
        assert results['gt_seg_map'].shape == (num_slices, 96, 96)
        assert results['gt_seg_map'].dtype == np.uint8
        assert results['seg_fields'] == ['gt_seg_map']
        assert results['spacing'][0] == 1.
        np.testing.assert_array_equal(results['img'], raw['img'])
        np.testing.assert_array_equal(results['gt_seg_map'],
                                      raw['gt_seg_map'])
        np.testing.assert_allclose(results['affine'], raw['affine'])
        # the raw grid, for writing predictions back
        assert results['original_geometry']['shape'] == case['shape']
        assert results['original_geometry']['spacing'][0] == 5.
    # labels 1 and 2 merged
    assert set(np.unique(raw['gt_seg_map'])) == {0, 1}
    assert raw['gt_seg_map'].sum() == 5 * (case['num_liver'] +
                                           case['num_tumour'])


def test_raw_without_preprocessing(lits):
    case = lits[0][0]
    results = LoadVolumeNifti(to_float32=True)(dict(img_path=case['image']))
    assert results['img'].shape == (1, ) + tuple(case['shape'])
    assert results['img'].dtype == np.float32
    assert results['img'].min() == -1024  # HU
    assert results['spacing'] == (5., 0.5703125, 0.5703125)
    # without a recorded original grid, the file's own
    assert results['original_geometry']['shape'] == case['shape']
    assert 'gt_seg_map' not in results
    # labels kept as they are (0, 1, 2)
    results = LoadVolumeNifti(with_seg=True)(
        dict(img_path=case['image'], seg_map_path=case['label']))
    assert set(np.unique(results['gt_seg_map'])) == {0, 1, 2}


def test_errors(lits, tmp_path):
    cases, _ = lits
    case = cases[0]
    # no img_path
    with pytest.raises(KeyError, match="requires the key 'img_path'"):
        LoadVolumeNifti()(dict(seg_map_path=case['label']))
    # with_seg without seg_map_path
    with pytest.raises(KeyError, match="needs 'seg_map_path'"):
        LoadVolumeNifti(with_seg=True)(dict(img_path=case['image']))
    # a missing file is named
    with pytest.raises(FileNotFoundError, match='nope.nii'):
        LoadVolumeNifti()(dict(img_path=str(tmp_path / 'nope.nii')))
    # label of another case (another shape)
    with pytest.raises(ValueError, match='does not match the volume'):
        LoadVolumeNifti(with_seg=True)(
            dict(img_path=case['image'], seg_map_path=cases[2]['label']))
    # label with another affine
    moved = tmp_path / 'segmentation-0.nii'
    img = nib.load(case['label'])
    affine = img.affine.copy()
    affine[0, 3] += 1.
    nib.save(
        nib.Nifti1Image(np.asanyarray(img.dataobj).copy(), affine),
        str(moved))
    with pytest.raises(ValueError, match='affines of .*segmentation-0.nii'):
        LoadVolumeNifti(with_seg=True)(
            dict(img_path=case['image'], seg_map_path=str(moved)))
    # an image given as label is caught by the preprocessing
    shutil.copy(case['image'], tmp_path / 'swapped.nii')
    with pytest.raises(ValueError, match='swapped.nii holds label values'):
        LoadVolumeNifti(with_seg=True, preprocess=PREPROCESS)(
            dict(img_path=case['image'],
                 seg_map_path=str(tmp_path / 'swapped.nii')))
    # unknown preprocess key
    with pytest.raises(KeyError, match="Unknown preprocess keys"):
        LoadVolumeNifti(preprocess=dict(window=(0, 1), spacing=1.))
    # preprocess of the wrong type
    with pytest.raises(TypeError, match='preprocess must be a dict'):
        LoadVolumeNifti(preprocess=(0, 1))


def test_repr():
    assert repr(LoadVolumeNifti(with_seg=True)) == (
        'LoadVolumeNifti(with_seg=True, to_float32=False, preprocess=None, '
        'affine_tol=0.001)')
