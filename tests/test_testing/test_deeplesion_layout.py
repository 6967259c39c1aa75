import csv

import cv2
import numpy as np
import pytest

from tests.helpers.data_cache import fetch_pyradiomics_ct
from tests.helpers.deeplesion_layout import (DL_INFO_COLUMNS,
                                             build_deeplesion_layout_from_ct)


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    return build_deeplesion_layout_from_ct(
        str(tmp_path_factory.mktemp('layout')), context_mm=10.)


@pytest.fixture(scope='module')
def volumes():
    import nrrd
    return {
        c['name']: (nrrd.read(c['image'])[0], nrrd.read(c['label'])[0])
        for c in fetch_pyradiomics_ct()
    }


def test_dl_info_csv(layout):
    with open(layout['dl_info'], newline='') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == DL_INFO_COLUMNS
        rows = list(reader)
    assert [r['File_name'] for r in rows] == [
        '000001_01_01_034.png', '000002_01_01_023.png'
    ]
    lung1 = rows[0]
    assert lung1['Bounding_boxes'] == '206, 347, 230, 369'
    assert lung1['Slice_range'] == '32, 36'  # +-10 mm at 5 mm
    assert lung1['Spacing_mm_px_'] == '0.5703125, 0.5703125, 5'
    assert lung1['Image_size'] == '512, 512'
    assert lung1['Train_Val_Test'] == '1' and rows[1]['Train_Val_Test'] == '3'
    assert lung1['Coarse_lesion_type'] == '-1'  # unlabelled in training
    assert rows[1]['Coarse_lesion_type'] == '5'  # lung
    long_axis, short_axis = map(float,
                                lung1['Lesion_diameters_Pixel_'].split(','))
    assert long_axis >= short_axis > 0
    # the long axis fits in the box diagonal
    assert long_axis <= np.hypot(24, 22)


def test_pngs_hold_the_ct(layout, volumes):
    for case in layout['cases']:
        image, label = volumes[case['name']]
        areas = (label > 0).sum(axis=(0, 1))
        # the key slice is the one where the lesion is largest
        assert case['key_slice'] == int(np.argmax(areas)) + 1
        first, last = case['slice_range']
        assert last - first == 4
        for index in (first, case['key_slice'], last):
            png = cv2.imread(
                f"{layout['images_dir']}/{case['folder']}/{index:03d}.png",
                cv2.IMREAD_UNCHANGED)
            assert png.dtype == np.uint16 and png.shape == (512, 512)
            hu = png.astype(np.int32) - 32768
            assert np.array_equal(hu, image[:, :, index - 1].T)
        # the box is the mask's extent on the key slice
        ys, xs = np.nonzero(label[:, :, case['key_slice'] - 1].T)
        assert case['bbox'] == (xs.min(), ys.min(), xs.max() + 1,
                                ys.max() + 1)


def test_layout_options(tmp_path):
    # the whole series, one case, in the validation split
    info = build_deeplesion_layout_from_ct(
        str(tmp_path), splits={'lung1': 2}, context_mm=None)
    assert [c['name'] for c in info['cases']] == ['lung1']
    assert info['cases'][0]['slice_range'] == (1, 48)
    assert info['cases'][0]['split'] == 2
    # a split that is not 1, 2 or 3
    with pytest.raises(ValueError, match='must be 1, 2 or 3'):
        build_deeplesion_layout_from_ct(str(tmp_path), splits={'lung1': 4})
    # no known case selected
    with pytest.raises(ValueError, match='selects none'):
        build_deeplesion_layout_from_ct(str(tmp_path), splits={'lung9': 1})
