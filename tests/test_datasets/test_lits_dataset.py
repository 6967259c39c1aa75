"""LiTSDataset on prepared and raw LiTS-named real chest CTs."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import DATASETS

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from svd_mm.datasets import LiTSDataset
from tests.helpers.lits_layout import build_lits_layout_from_ct
from tests.helpers.tools import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'dataset_converters' / 'prepare_lits.py'
prepare = load_script(SCRIPT)

PREPROCESS = dict(window=(-200, 250), spacing_z=1.0)
PIPELINE = [dict(type='LoadVolumeNifti', with_seg=True)]


@pytest.fixture(scope='module')
def lits(tmp_path_factory):
    raw = tmp_path_factory.mktemp('raw')
    cases = build_lits_layout_from_ct(str(raw))['cases']
    out = tmp_path_factory.mktemp('prepared')
    split = prepare.main([str(raw), str(out)])
    return raw, out, cases, split


def test_registered():
    assert DATASETS.get('LiTSDataset') is LiTSDataset
    assert LiTSDataset.METAINFO['classes'] == ('background', 'liver')


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_prepared_splits(lits, split):
    _, out, cases, written = lits
    dataset = LiTSDataset(data_root=str(out), split=split, pipeline=PIPELINE)
    assert len(dataset) == len(written[split])
    assert dataset.metainfo['classes'] == ('background', 'liver')
    for i, case_id in enumerate(written[split]):
        info = dataset.get_data_info(i)
        number = case_id.split('-')[1]
        assert info['case_id'] == case_id
        assert info['img_path'] == str(out / 'images' / f'{case_id}.nii')
        assert info['seg_map_path'] == str(out / 'labels' /
                                           f'segmentation-{number}.nii')
        assert info['seg_fields'] == [] and info['reduce_zero_label'] is False
        raw_case = cases[int(number)]
        assert info['original_geometry']['shape'] == raw_case['shape']
        assert 'preprocess' not in info
        results = dataset[i]
        num_slices = (raw_case['shape'][0] - 1) * 5 + 1
        assert results['img'].shape == (1, num_slices, 96, 96)
        assert results['gt_seg_map'].shape == (num_slices, 96, 96)
        assert results['original_geometry'] == info['original_geometry']


def test_raw_with_on_the_fly_preprocessing_matches_prepared(lits, tmp_path):
    raw, out, _, written = lits
    # the raw files in LiTS's two batch folders
    for i in range(4):
        batch = tmp_path / f'Training Batch {1 + i % 2}'
        batch.mkdir(exist_ok=True)
        for name in (f'volume-{i}.nii', f'segmentation-{i}.nii'):
            shutil.copy(raw / name, batch / name)
    raw_set = LiTSDataset(
        data_root=str(tmp_path),
        ann_file=str(out / 'split.json'),
        split='train',
        data_prefix=dict(img_path='', seg_map_path=''),
        preprocess=PREPROCESS,
        pipeline=PIPELINE)
    prepared_set = LiTSDataset(
        data_root=str(out), split='train', pipeline=PIPELINE)
    assert len(raw_set) == len(prepared_set) == len(written['train'])
    for i in range(len(raw_set)):
        info = raw_set.get_data_info(i)
        assert info['preprocess'] == PREPROCESS
        assert 'Training Batch' in info['img_path']
        a, b = raw_set[i], prepared_set[i]
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert a['original_geometry'] == b['original_geometry']
        np.testing.assert_allclose(a['affine'], b['affine'])


def test_split_given_as_numbers(lits, tmp_path):
    _, out, _, _ = lits
    split_file = tmp_path / 'split.json'
    split_file.write_text(json.dumps(dict(train=[3, '1'])))
    dataset = LiTSDataset(
        data_root=str(out), ann_file=str(split_file), pipeline=PIPELINE)
    assert [dataset.get_data_info(i)['case_id']
            for i in range(2)] == ['volume-3', 'volume-1']


def test_errors(lits, tmp_path):
    raw, out, _, _ = lits
    # unknown split name
    with pytest.raises(ValueError, match='split must be one of'):
        LiTSDataset(data_root=str(out), split='valid')
    # data_prefix without the label folder
    with pytest.raises(KeyError, match='seg_map_path'):
        LiTSDataset(data_root=str(out), data_prefix=dict(img_path='images'))
    # prepared data need the meta folder
    with pytest.raises(KeyError, match='meta_path'):
        LiTSDataset(
            data_root=str(out),
            data_prefix=dict(img_path='images', seg_map_path='labels'))
    # missing split file
    with pytest.raises(FileNotFoundError, match='prepare_lits.py'):
        LiTSDataset(data_root=str(tmp_path))
    # a split file without the split
    (tmp_path / 'split.json').write_text(json.dumps(dict(train=[0])))
    with pytest.raises(KeyError, match="no 'test' list"):
        LiTSDataset(data_root=str(tmp_path), split='test')
    # bad case id
    (tmp_path / 'split.json').write_text(json.dumps(dict(train=['liver-0'])))
    with pytest.raises(ValueError, match="'liver-0' is not a LiTS case id"):
        LiTSDataset(data_root=str(tmp_path))
    # a case twice
    (tmp_path / 'split.json').write_text(json.dumps(dict(train=[0, 0])))
    with pytest.raises(ValueError, match='lists a case twice'):
        LiTSDataset(data_root=str(tmp_path), data_prefix=dict(
            img_path='', seg_map_path=''), preprocess=PREPROCESS)
    # files of the split missing, counted and named
    (tmp_path / 'split.json').write_text(json.dumps(dict(train=[0, 9])))
    shutil.copy(raw / 'volume-0.nii', tmp_path / 'volume-0.nii')
    with pytest.raises(FileNotFoundError, match=r"3 files of the 2 cases .*"
                       r"segmentation-0.nii\[.gz\]"):
        LiTSDataset(
            data_root=str(tmp_path),
            data_prefix=dict(img_path='', seg_map_path=''),
            preprocess=PREPROCESS)
    # missing image folder
    with pytest.raises(FileNotFoundError, match='image folder'):
        LiTSDataset(
            data_root=str(tmp_path),
            data_prefix=dict(img_path='nope', seg_map_path=''),
            preprocess=PREPROCESS)
    # a meta json without the original geometry
    broken = tmp_path / 'broken'
    shutil.copytree(out, broken)
    case_id = json.loads((broken / 'split.json').read_text())['val'][0]
    (broken / 'meta' / f'{case_id}.json').write_text('{}')
    with pytest.raises(KeyError, match="has no 'original' geometry"):
        LiTSDataset(data_root=str(broken), split='val')


def test_repr(lits):
    _, out, _, _ = lits
    text = repr(LiTSDataset(data_root=str(out), split='val'))
    assert 'Split: val' in text and 'Number of cases: \t1' in text
