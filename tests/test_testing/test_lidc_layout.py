"""The LIDC-IDRI-layout mini dataset cut from the real pyradiomics CTs."""
import csv

import numpy as np
import pytest

from tests.helpers.lidc_layout import build_lidc_layout_from_ct

SIZE = 48


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    return build_lidc_layout_from_ct(
        str(tmp_path_factory.mktemp('lidc_layout') / 'lidc'), size=SIZE)


def _load(layout, name):
    with np.load(f'{layout["data_root"]}/nodule/{name}') as npz:
        return {k: npz[k] for k in npz.files}


def _rows(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def test_files_follow_the_release(layout):
    root = layout['data_root']
    assert layout['ann_file'] == 'train_test_split.csv'
    assert layout['info_file'] == \
        'info/lidc_nodule_info_new_with_subset.csv'
    assert layout['data_prefix'] == 'nodule'
    # 2 cases x (4 nodule + 4 background) crops, 1 of each per case to test
    assert len(layout['train']) == 12 and len(layout['test']) == 4
    split = _rows(f'{root}/train_test_split.csv')
    assert split[0] == ['train', 'test']
    assert [r[0] for r in split[1:]] == layout['train']
    # the shorter column is padded with empty cells (pandas' NaN)
    assert [r[1] for r in split[1:]] == layout['test'] + [''] * 8
    info = _rows(f'{root}/{layout["info_file"]}')
    assert info[0][:4] == ['index', 'malignancy', 'malignancy_mode', 'subset']
    by_name = {r[0]: r for r in info[1:]}
    assert sorted(f'{n}.npz' for n in by_name) == \
        sorted(layout['train'] + layout['test'])
    for name, label in layout['labels'].items():
        row = by_name[name[:-4]]
        assert row[2] == ('5' if label else '1')
        assert row[3] == ('test' if name in layout['test'] else 'train')
        assert label == int('nodule' in name)
    for name in layout['train'] + layout['test']:
        arrays = _load(layout, name)
        assert sorted(arrays) == ['answer1', 'voxel']
        assert arrays['voxel'].shape == arrays['answer1'].shape == (SIZE, ) * 3
        assert arrays['voxel'].dtype == arrays['answer1'].dtype == np.uint8
        assert set(np.unique(arrays['answer1'])) <= {0, 1}


def test_nodule_crops_hold_the_real_lesion(layout):
    # lung1's lesion: 837 voxels of 0.5703^2 x 5 mm = 1361 mm^3, whole in
    # the 48 mm crop; at 1 mm the resampled mask keeps its volume
    lung1 = _load(layout, 'lung1_nodule0.npz')
    assert abs(lung1['answer1'].sum() - 837 * 0.5703125**2 * 5) < 0.05 * 1361
    for case in ('lung1', 'lung2'):
        crop = _load(layout, f'{case}_nodule0.npz')
        mask = crop['answer1'].astype(bool)
        centroid = np.argwhere(mask).mean(0)
        # unshifted crop: centred on the lesion (partial-volume rounding
        # and lung2's mass running past the crop allow ~1 voxel)
        assert np.abs(centroid - (SIZE - 1) / 2).max() < 1.5, case
        # soft tissue (about -60..10 HU -> grey ~170) vs aerated lung
        lesion, rest = crop['voxel'][mask], crop['voxel'][~mask]
        assert lesion.mean() > 150 and lesion.mean() > rest.mean() + 50
    # shifted crops: same lesion, moved by at most 3 voxels per axis
    ref = np.argwhere(lung1['answer1']).mean(0)
    shifts = []
    for k in (1, 2, 3):
        mask = _load(layout, f'lung1_nodule{k}.npz')['answer1']
        shifts.append(np.argwhere(mask).mean(0) - ref)
    shifts = np.abs(np.array(shifts))
    assert shifts.max() <= 3.5 and shifts.max() > 0.5


def test_background_crops_are_lung(layout):
    for case in ('lung1', 'lung2'):
        for k in range(4):
            crop = _load(layout, f'{case}_background{k}.npz')
            assert crop['answer1'].sum() == 0
            voxel = crop['voxel']
            # centred in aerated lung (< -500 HU -> grey 94), with structure
            centre = voxel[20:28, 20:28, 20:28]
            assert np.median(centre) < 94, (case, k)
            assert voxel.std() > 5


def test_window_and_seed(tmp_path):
    out = build_lidc_layout_from_ct(
        str(tmp_path / 'w'), size=16, num_nodule_crops=2,
        num_background_crops=2, max_shift=2, window=(-1000., 0.))
    assert out['window'] == (-1000., 0.)
    # with a [-1000, 0] HU window soft tissue (~0 HU) saturates at 255
    lesion = _load(out, 'lung1_nodule0.npz')
    assert np.median(lesion['voxel'][lesion['answer1'] > 0]) > 220
    # deterministic for a seed
    again = build_lidc_layout_from_ct(
        str(tmp_path / 'w2'), size=16, num_nodule_crops=2,
        num_background_crops=2, max_shift=2, window=(-1000., 0.))
    for name in out['train'] + out['test']:
        for key, value in _load(out, name).items():
            np.testing.assert_array_equal(value, _load(again, name)[key])


def test_bad_arguments(tmp_path):
    out = str(tmp_path / 'x')
    # too small to hold a nodule
    with pytest.raises(ValueError, match='size'):
        build_lidc_layout_from_ct(out, size=4)
    # spacing in mm must be positive
    with pytest.raises(ValueError, match='spacing'):
        build_lidc_layout_from_ct(out, spacing=0)
    # at least one crop of each kind
    with pytest.raises(ValueError, match='num_background_crops'):
        build_lidc_layout_from_ct(out, num_background_crops=0)
    # the test split must leave crops to train on
    with pytest.raises(ValueError, match='num_test'):
        build_lidc_layout_from_ct(out, num_nodule_crops=2, num_test=2)
    # a shift must keep the lesion in the crop
    with pytest.raises(ValueError, match='max_shift'):
        build_lidc_layout_from_ct(out, size=16, max_shift=8)
    # the window must be (low, high)
    with pytest.raises(ValueError, match='window'):
        build_lidc_layout_from_ct(out, window=(400, -1024))
