"""tools/dataset_converters/prepare_lits.py on LiTS-named real chest CTs.

Four raw cases (``volume-N.nii`` / ``segmentation-N.nii``, labels 1 and 2)
are cut from the two pyradiomics CTs by
:func:`tests.helpers.lits_layout.build_lits_layout_from_ct`; the script
must give 1 mm slices, the HU window as uint8, binary liver labels (1 + 2),
the original geometry in the meta jsons, a seeded split, and clear errors
for broken input.
"""
import json
import os.path as osp
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.helpers.tools import load_script
from tests.helpers.lits_layout import build_lits_layout_from_ct
from svd_mm.utils.volume_io import (read_nifti, save_prediction_nifti,
                                    window_intensity)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'dataset_converters' / 'prepare_lits.py'
# registered: --nproc pickles its functions
prepare = load_script(SCRIPT, register=True)


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp('lits_raw')
    info = build_lits_layout_from_ct(str(root))
    return root, info['cases']


@pytest.fixture(scope='module')
def prepared(raw, tmp_path_factory):
    root, _ = raw
    out = tmp_path_factory.mktemp('lits_prepared')
    split = prepare.main([str(root), str(out)])
    return out, split


def test_layout_of_the_raw_cases(raw):
    root, cases = raw
    assert [c['case_id'] for c in cases] == [f'volume-{i}' for i in range(4)]
    assert [c['source'] for c in cases] == ['lung1', 'lung1', 'lung2', 'lung2']
    for case in cases:
        label = np.asarray(nib.load(case['label']).dataobj)
        assert set(np.unique(label)) == {0, 1, 2}
        assert case['num_tumour'] > 0 and case['num_liver'] > 0


def test_prepared_files(raw, prepared):
    _, cases = raw
    out, _ = prepared
    for case in cases:
        number = case['case_id'].split('-')[1]
        image = read_nifti(str(out / 'images' / f"{case['case_id']}.nii"))
        label = read_nifti(str(out / 'labels' / f'segmentation-{number}.nii'))
        raw_image = read_nifti(case['image'])
        raw_label = read_nifti(case['label']).array
        # 5 mm -> 1 mm slices, in-plane unchanged
        num_slices = (raw_image.shape[0] - 1) * 5 + 1
        assert image.shape == label.shape == (num_slices, 96, 96)
        assert image.geometry == label.geometry
        np.testing.assert_allclose(image.spacing,
                                   (1., ) + raw_image.spacing[1:])
        # the first slice stays put; the slice axis is scaled by 1 / 5
        np.testing.assert_allclose(image.affine[:, 3], raw_image.affine[:, 3])
        np.testing.assert_allclose(image.affine[:3, 2],
                                   raw_image.affine[:3, 2] / 5)
        # HU window [-200, 250] -> uint8 [0, 255]; raw slices kept exactly
        assert image.array.dtype == np.uint8
        np.testing.assert_array_equal(
            image.array[::5],
            np.rint(window_intensity(raw_image.array)).astype(np.uint8))
        # liver = labels 1 and 2
        label = label.array
        assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
        np.testing.assert_array_equal(label[::5], raw_label > 0)
        meta = json.loads((out / 'meta' / f"{case['case_id']}.json")
                          .read_text())
        assert meta['original'] == raw_image.geometry
        assert meta['prepared'] == image.geometry
        assert meta['window'] == [-200., 250.] and meta['spacing_z'] == 1.
        assert meta['num_foreground'] == int(label.sum())
        assert meta['source_labels']['2'] == case['num_tumour']
        assert meta['image'] == f"images/{case['case_id']}.nii"


def test_prediction_round_trip_to_the_original_grid(raw, prepared, tmp_path):
    """The prepared label, written back as a prediction with the meta
    json's geometry, overlays the raw lesion mask."""
    _, cases = raw
    out, _ = prepared
    for case in cases:
        meta = json.loads((out / 'meta' / f"{case['case_id']}.json")
                          .read_text())
        label = read_nifti(str(out / meta['label']))
        assert label.geometry == meta['prepared']
        path = str(tmp_path / f"{case['case_id']}.nii.gz")
        save_prediction_nifti(label, path, meta['original'])
        back, raw_label = read_nifti(path), read_nifti(case['label'])
        assert back.shape == raw_label.shape
        np.testing.assert_allclose(back.affine, raw_label.affine)
        back, raw_label = back.array, raw_label.array
        dice = 2 * (back & (raw_label > 0)).sum() / (
            back.sum() + (raw_label > 0).sum())
        assert dice > 0.9
        assert dice == 1.0  # nearest slice up, then down: exact


def test_split(prepared):
    out, split = prepared
    written = json.loads((out / 'split.json').read_text())
    assert written['seed'] == 0
    # 4 cases: LiTS proportions 105/13/13 -> 2 / 1 / 1
    assert [len(written[s]) for s in ('train', 'val', 'test')] == [2, 1, 1]
    assert sorted(sum((written[s] for s in ('train', 'val', 'test')), [])) \
        == [f'volume-{i}' for i in range(4)]
    assert written['train'] == split['train']
    # deterministic and seeded
    ids = [f'volume-{i}' for i in range(131)]
    first, again = prepare.make_split(ids, 0), prepare.make_split(ids[::-1], 0)
    assert first == again
    assert [len(first[s]) for s in ('train', 'val', 'test')] == [105, 13, 13]
    assert prepare.make_split(ids, 1) != first


@pytest.mark.parametrize('num, sizes', [(131, [105, 13, 13]), (3, [1, 1, 1]),
                                        (4, [2, 1, 1]), (30, [24, 3, 3]),
                                        (262, [210, 26, 26])])
def test_split_sizes(num, sizes):
    assert prepare.split_sizes(num) == sizes


def test_split_file(raw, tmp_path, capsys):
    root, _ = raw
    split_file = tmp_path / 'mine.json'
    split_file.write_text(json.dumps(dict(train=[0, 'volume-1'],
                                          val=['2'], test=[])))
    out = tmp_path / 'out'
    prepare.main([
        str(root),
        str(out), '--split-file',
        str(split_file), '--spacing-z', '2.5', '--compress', '--nproc', '2'
    ])
    assert 'split train 2, val 1, test 0' in capsys.readouterr().out
    written = json.loads((out / 'split.json').read_text())
    assert written['train'] == ['volume-0', 'volume-1']
    assert written['val'] == ['volume-2'] and written['test'] == []
    assert written['source'] == str(split_file)
    image = read_nifti(str(out / 'images' / 'volume-0.nii.gz'))
    # 9 slices 5 mm apart -> 17 slices 2.5 mm apart
    assert image.shape == (17, 96, 96) and image.spacing[0] == 2.5


def test_split_file_errors(raw, tmp_path):
    root, _ = raw
    ids = [f'volume-{i}' for i in range(4)]

    def write(content):
        path = tmp_path / 'split.json'
        path.write_text(content if isinstance(content, str) else
                        json.dumps(content))
        return str(path)

    # a case in two splits
    with pytest.raises(ValueError, match='volume-1 is in both'):
        prepare.read_split_file(write(dict(train=[1], val=[1])), ids)
    # a case that is not in the data folder
    with pytest.raises(ValueError, match='volume-7'):
        prepare.read_split_file(write(dict(train=[7])), ids)
    # not a case id
    with pytest.raises(ValueError, match="'liver' is not a case id"):
        prepare.read_split_file(write(dict(train=['liver'])), ids)
    # a typo in a split name
    with pytest.raises(ValueError, match='unknown keys'):
        prepare.read_split_file(write(dict(train=[0], valid=[1])), ids)
    # not JSON
    with pytest.raises(ValueError, match='not valid JSON'):
        prepare.read_split_file(write('train: 0'), ids)
    # too few cases for a random split
    with pytest.raises(ValueError, match='at least 3 volumes'):
        prepare.make_split(ids[:2])


def _copy_case(raw_case, folder, number):
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f'volume-{number}.nii'
    label = folder / f'segmentation-{number}.nii'
    shutil.copy(raw_case['image'], image)
    shutil.copy(raw_case['label'], label)
    return image, label


def test_bad_cases(raw, tmp_path):
    _, cases = raw
    out = str(tmp_path / 'out')
    # a volume without label
    lonely = tmp_path / 'lonely'
    image, label = _copy_case(cases[0], lonely, 5)
    label.unlink()
    with pytest.raises(FileNotFoundError, match='volume-5.nii'):
        prepare.find_cases(str(lonely))
    # image and label of different shapes
    image, label = _copy_case(cases[0], tmp_path / 'shape', 0)
    shutil.copy(cases[2]['label'], label)  # 17 slices instead of 9
    with pytest.raises(ValueError, match='segmentation-0.nii.*differ in '
                       'shape'):
        prepare.prepare_case('volume-0', str(image), str(label), out)
    # image and label with different affines
    image, label = _copy_case(cases[0], tmp_path / 'affine', 0)
    img = nib.load(str(label))
    affine = img.affine.copy()
    affine[2, 3] += 5.  # one slice off
    # a copy: the data of a loaded .nii map the file that is overwritten
    data = np.asanyarray(img.dataobj).copy()
    nib.save(nib.Nifti1Image(data, affine), str(label))
    with pytest.raises(ValueError, match='affines of .*volume-0.nii and '
                       '.*segmentation-0.nii differ by up to 5'):
        prepare.prepare_case('volume-0', str(image), str(label), out)
    # NaN voxels in the image
    image, label = _copy_case(cases[0], tmp_path / 'nan', 0)
    img = nib.load(str(image))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    data[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), str(image))
    with pytest.raises(ValueError, match='volume-0.nii has 1 NaN'):
        prepare.prepare_case('volume-0', str(image), str(label), out)
    # an empty label file
    image, label = _copy_case(cases[0], tmp_path / 'empty', 0)
    label.write_bytes(b'')
    with pytest.raises(ValueError, match='segmentation-0.nii is empty'):
        prepare.prepare_case('volume-0', str(image), str(label), out)
    # the image given as label
    image, label = _copy_case(cases[0], tmp_path / 'swap', 0)
    shutil.copy(image, label)
    with pytest.raises(ValueError, match='segmentation-0.nii holds label '
                       'values'):
        prepare.prepare_case('volume-0', str(image), str(label), out)
    # a case twice (in two batch folders)
    twice = tmp_path / 'twice'
    _copy_case(cases[0], twice / 'Training Batch 1', 0)
    _copy_case(cases[0], twice / 'Training Batch 2', 0)
    with pytest.raises(ValueError, match='Case 0 appears twice'):
        prepare.find_cases(str(twice))
    # no volume at all
    (tmp_path / 'nothing').mkdir()
    with pytest.raises(FileNotFoundError, match='No volume-N.nii'):
        prepare.find_cases(str(tmp_path / 'nothing'))
    # no folder at all
    with pytest.raises(FileNotFoundError, match='does not exist'):
        prepare.find_cases(str(tmp_path / 'missing'))


def test_batch_folders_are_searched(raw, tmp_path):
    _, cases = raw
    _copy_case(cases[0], tmp_path / 'Training Batch 1', 0)
    _copy_case(cases[1], tmp_path / 'Training Batch 2', 28)
    found = prepare.find_cases(str(tmp_path))
    assert list(found) == ['volume-0', 'volume-28']
    assert osp.basename(osp.dirname(found['volume-28']['label'])) == \
        'Training Batch 2'
