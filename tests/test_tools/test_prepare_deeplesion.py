import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tools import load_script
from tests.helpers.deeplesion_layout import (DL_INFO_COLUMNS,
                                             build_deeplesion_layout_from_ct)

SCRIPT = (Path(__file__).resolve().parents[2] / 'tools' /
          'dataset_converters' / 'prepare_deeplesion.py')
prepare = load_script(SCRIPT)


def _row(name, box, split, noisy=0, slice_range='103, 115', size='512, 512',
         spacing='0.78125, 0.78125, 5', lesion_type=-1):
    folder, key = name.rsplit('_', 1)
    patient, study, series = folder.split('_')
    return {
        'File_name': name,
        'Patient_index': int(patient),
        'Study_index': int(study),
        'Series_ID': int(series),
        'Key_slice_index': int(key[:-4]),
        'Measurement_coordinates': '233.5, 95.0, 230.1, 101.2, 237.0, '
        '100.3, 231.6, 92.7',
        'Bounding_boxes': box,
        'Lesion_diameters_Pixel_': '17.3, 11.6',
        'Normalized_lesion_location': '0.44, 0.13, 0.88',
        'Coarse_lesion_type': lesion_type,
        'Possibly_noisy': noisy,
        'Slice_range': slice_range,
        'Spacing_mm_px_': spacing,
        'Image_size': size,
        'DICOM_windows': '-175, 275',
        'Patient_gender': 'F',
        'Patient_age': 51,
        'Train_Val_Test': split,
    }


ROWS = [
    # two lesions on one train key slice
    _row('000001_01_01_109.png', '226.169, 90.0204, 241.252, 104.097', 1),
    _row('000001_01_01_109.png', '300, 310, 340, 352', 1),
    # a val key slice whose only lesion is possibly noisy
    _row('000002_01_02_045.png', '10, 20, 30, 50', 2, noisy=1,
         slice_range='40, 50', spacing='0.7, 0.7, 2.5', lesion_type=4),
    # a test key slice with a clean and a noisy lesion
    _row('000003_02_01_030.png', '100, 100, 150, 140', 3, slice_range='1, 60',
         spacing='0.6, 0.6, 1.25', lesion_type=5),
    _row('000003_02_01_030.png', '200, 210, 220, 250', 3, noisy=1,
         slice_range='1, 60', spacing='0.6, 0.6, 1.25', lesion_type=5),
]


def _write_csv(path, rows, columns=DL_INFO_COLUMNS):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_read_dl_info(tmp_path):
    lesions = prepare.read_dl_info(_write_csv(tmp_path / 'DL_info.csv', ROWS))
    assert len(lesions) == 5
    first = lesions[0]
    assert first['file_name'] == '000001_01_01/109.png'
    assert first['key_slice'] == 109
    assert first['bbox'] == [226.169, 90.0204, 241.252, 104.097]
    assert first['slice_range'] == [103, 115]
    assert first['spacing'] == [0.78125, 0.78125, 5.]
    assert first['image_size'] == [512, 512]
    assert first['split'] == 1 and first['noisy'] is False
    assert first['recist'] == [233.5, 95., 230.1, 101.2, 237., 100.3, 231.6,
                               92.7]
    assert lesions[2]['noisy'] is True and lesions[2]['lesion_type'] == 4


# [noisy mode, images per split, lesions per split, ignored test lesions]
NOISY_CASES = [
    ['drop', (1, 0, 1), (2, 0, 1), 0],
    ['ignore', (1, 1, 1), (2, 1, 2), 1],
    ['keep', (1, 1, 1), (2, 1, 2), 0],
]


@pytest.mark.parametrize('noisy,images,lesions,ignored', NOISY_CASES)
def test_build_coco(tmp_path, noisy, images, lesions, ignored):
    rows = prepare.read_dl_info(_write_csv(tmp_path / 'DL_info.csv', ROWS))
    cocos = prepare.build_coco(rows, noisy=noisy)
    assert list(cocos) == ['train', 'val', 'test']
    assert tuple(len(c['images']) for c in cocos.values()) == images
    assert tuple(len(c['annotations']) for c in cocos.values()) == lesions
    assert sum(a['iscrowd'] for a in cocos['test']['annotations']) == ignored
    train = cocos['train']
    assert train['categories'] == [dict(id=1, name='lesion')]
    image = train['images'][0]
    assert image['file_name'] == '000001_01_01/109.png'
    assert (image['width'], image['height']) == (512, 512)
    assert image['slice_intv'] == 5.
    assert image['slice_range'] == [103, 115]
    assert image['key_slice'] == 109
    ann = train['annotations'][0]
    assert ann['image_id'] == image['id'] and ann['category_id'] == 1
    assert ann['bbox'] == pytest.approx(
        [226.169, 90.0204, 241.252 - 226.169, 104.097 - 90.0204])
    assert ann['area'] == pytest.approx(ann['bbox'][2] * ann['bbox'][3])
    all_images = [i['id'] for c in cocos.values() for i in c['images']]
    all_anns = [a['id'] for c in cocos.values() for a in c['annotations']]
    assert len(set(all_images)) == len(all_images)
    assert len(set(all_anns)) == len(all_anns)
    if cocos['test']['images']:
        assert cocos['test']['images'][0]['slice_intv'] == 1.25


def test_bad_csv(tmp_path):
    # a column missing from the header
    columns = [c for c in DL_INFO_COLUMNS if c != 'Slice_range']
    path = _write_csv(tmp_path / 'a.csv', ROWS, columns)
    with pytest.raises(KeyError, match="lacks the column.*'Slice_range'"):
        prepare.read_dl_info(path)
    # three numbers for a box
    bad = dict(ROWS[0], Bounding_boxes='1, 2, 3')
    with pytest.raises(ValueError, match='line 2: Bounding_boxes must hold 4'):
        prepare.read_dl_info(_write_csv(tmp_path / 'b.csv', [bad]))
    # an empty box
    bad = dict(ROWS[0], Bounding_boxes='10, 10, 5, 20')
    with pytest.raises(ValueError, match='line 2: Bounding_boxes.*empty'):
        prepare.read_dl_info(_write_csv(tmp_path / 'c.csv', [bad]))
    # file name and key slice disagree
    bad = dict(ROWS[0], Key_slice_index=110)
    with pytest.raises(ValueError, match='does not end with the '
                       'Key_slice_index 110'):
        prepare.read_dl_info(_write_csv(tmp_path / 'd.csv', [bad]))
    # key slice outside the slice range
    bad = dict(ROWS[0], Slice_range='1, 100')
    with pytest.raises(ValueError, match='outside Slice_range'):
        prepare.read_dl_info(_write_csv(tmp_path / 'e.csv', [bad]))
    # unknown split
    bad = dict(ROWS[0], Train_Val_Test=4)
    with pytest.raises(ValueError, match='Train_Val_Test must be 1, 2 or 3'):
        prepare.read_dl_info(_write_csv(tmp_path / 'f.csv', [bad]))
    # no lesion at all
    with pytest.raises(ValueError, match='no lesion row'):
        prepare.read_dl_info(_write_csv(tmp_path / 'g.csv', []))
    # a box beyond the image
    bad = dict(ROWS[0], Bounding_boxes='500, 10, 530, 40')
    lesions = prepare.read_dl_info(_write_csv(tmp_path / 'h.csv', [bad]))
    with pytest.raises(ValueError, match='line 2: box .* not inside the '
                       '512x512'):
        prepare.build_coco(lesions)
    # an unknown noisy mode
    with pytest.raises(ValueError, match='noisy must be one of'):
        prepare.build_coco(lesions, noisy='skip')


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    return build_deeplesion_layout_from_ct(
        str(tmp_path_factory.mktemp('deeplesion')), context_mm=10.)


def test_cli_on_real_layout(layout, tmp_path):
    out_dir = tmp_path / 'annotations'
    proc = subprocess.run([
        sys.executable,
        str(SCRIPT), layout['dl_info'],
        str(out_dir), '--images-root', layout['images_dir']
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'train: 1 images, 1 lesions' in proc.stdout
    assert 'test : 1 images, 1 lesions' in proc.stdout
    test = json.loads((out_dir / 'deeplesion_test.json').read_text())
    case = layout['cases'][1]  # lung2 is the test case
    image = test['images'][0]
    key = case['key_slice']
    assert image['file_name'] == f"{case['folder']}/{key:03d}.png"
    assert image['slice_intv'] == 5.
    assert image['slice_range'] == list(case['slice_range'])
    assert (image['height'], image['width']) == (512, 512)
    x1, y1, x2, y2 = case['bbox']
    assert test['annotations'][0]['bbox'] == [x1, y1, x2 - x1, y2 - y1]
    # the mini set has no validation case
    assert 'val  : no image' in proc.stdout
    assert not (out_dir / 'deeplesion_val.json').exists()


def test_missing_key_slices_are_counted(layout, tmp_path):
    lesions = prepare.read_dl_info(layout['dl_info'])
    sizes = prepare.read_png_sizes(lesions, layout['images_dir'])
    assert sorted(sizes.values()) == [(512, 512), (512, 512)]
    # an Images_png folder without the key slices
    with pytest.raises(FileNotFoundError, match='2 of 2 key slices are '
                       'missing'):
        prepare.read_png_sizes(lesions, str(tmp_path))
