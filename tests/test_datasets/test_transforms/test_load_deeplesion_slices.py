import copy

import cv2
import mmdet  # noqa: F401
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import TRANSFORMS  # noqa: E402

from svd_mm.datasets.transforms import LoadDeepLesionSlices  # noqa: E402

# A synthetic 16-bit series: slice i (1..12) of 6x8 pixels holds
# HU(i, y, x) = 100 i - 600 + x + 10 y, linear along z, so linear
# interpolation between slices gives exactly HU at the fractional index.
H, W, NUM = 6, 8, 12
WINDOW = (-1024., 1050.)


def _hu(position):
    y, x = np.mgrid[:H, :W]
    return 100. * np.asarray(position)[..., None, None] - 600 + x + 10 * y


def _windowed(hu, window=WINDOW, out=(0., 255.)):
    scaled = (hu - window[0]) / (window[1] - window[0]) * (out[1] - out[0])
    return np.clip(scaled + out[0], min(out), max(out))


@pytest.fixture
def series(tmp_path):
    folder = tmp_path / 'Images_png' / '000007_02_01'
    folder.mkdir(parents=True)
    for i in range(1, NUM + 1):
        png = (_hu(i) + 32768).astype(np.uint16)
        assert cv2.imwrite(str(folder / f'{i:03d}.png'), png)
    return folder


def _results(folder, key=6, slice_intv=5., slice_range=(1, NUM), **kw):
    return dict(
        img_path=str(folder / f'{key:03d}.png'),
        slice_intv=slice_intv,
        slice_range=list(slice_range),
        **kw)


def test_load_deeplesion_slices_registry():
    assert DET_TRANSFORMS.get('LoadDeepLesionSlices') is LoadDeepLesionSlices
    # mmdet-only, next to LoadAnnotations/Resize
    assert 'LoadDeepLesionSlices' not in TRANSFORMS.module_dict


# [num_slices, slice_spacing, slice_intv, key, slice positions]
POSITION_CASES = [
    [9, 2.5, 5., 6, [4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8]],  # interpolated
    [9, 2.5, 2.5, 6, [2, 3, 4, 5, 6, 7, 8, 9, 10]],  # existing slices
    [9, 2.5, 1.25, 6, [1, 1, 2, 4, 6, 8, 10, 12, 12]],  # both ends clamped
    [9, 2.5, 5., 1, [1, 1, 1, 1, 1, 1.5, 2, 2.5, 3]],  # key first slice
    [9, 2.5, 5., 12, [10, 10.5, 11, 11.5, 12, 12, 12, 12, 12]],  # key last
    [9, 2.5, 3., 6, 6 + (np.arange(9) - 4) * 2.5 / 3],  # not dyadic
    [3, 5., 2.5, 6, [4, 6, 8]],
    [1, 2.5, 5., 6, [6]],
    [5, 1., 0.8, 6, [3.5, 4.75, 6, 7.25, 8.5]],
]


@pytest.mark.parametrize('num_slices,spacing,intv,key,positions',
                         POSITION_CASES)
def test_resampled_slices(series, num_slices, spacing, intv, key, positions):
    loader = LoadDeepLesionSlices(num_slices=num_slices, slice_spacing=spacing)
    out = loader(_results(series, key=key, slice_intv=intv))
    assert out['img'].shape == (H, W, num_slices)
    assert out['img'].dtype == np.float32
    assert out['img_shape'] == (H, W) and out['ori_shape'] == (H, W)
    np.testing.assert_allclose(out['slice_positions'], positions, atol=1e-12)
    expected = _windowed(_hu(np.asarray(positions, float))).transpose(1, 2, 0)
    np.testing.assert_allclose(out['img'], expected, rtol=0, atol=1e-3)


def test_window_and_output_range(series):
    # a narrow window clips most of the series; out_range can be reversed
    loader = LoadDeepLesionSlices(num_slices=3, hu_window=(-100., 100.),
                                  out_range=(-1., 1.))
    out = loader(_results(series, key=6, slice_intv=2.5))
    expected = _windowed(_hu([5., 6., 7.]), (-100., 100.), (-1., 1.))
    np.testing.assert_allclose(out['img'], expected.transpose(1, 2, 0),
                               atol=1e-5)
    assert out['img'].min() == -1. and out['img'].max() == 1.


def test_reads_only_the_needed_slices(series):
    # at 1.25 mm the output falls on even slices only
    for i in (3, 5, 7, 9, 11):
        (series / f'{i:03d}.png').unlink()
    out = LoadDeepLesionSlices()(_results(series, slice_intv=1.25))
    assert out['slice_positions'].tolist() == [1, 1, 2, 4, 6, 8, 10, 12, 12]


def test_key_slice_field_and_padding(tmp_path):
    # four-digit names and an explicit key slice
    folder = tmp_path / 'series'
    folder.mkdir()
    for i in (9, 10, 11):
        assert cv2.imwrite(str(folder / f'{i:04d}.png'),
                           (_hu(i) + 32768).astype(np.uint16))
    results = dict(img_path=str(folder / '0010.png'), slice_intv=5.,
                   slice_range=(9, 11), key_slice=10)
    out = LoadDeepLesionSlices(num_slices=3, slice_spacing=5.)(results)
    np.testing.assert_allclose(
        out['img'], _windowed(_hu([9., 10., 11.])).transpose(1, 2, 0),
        atol=1e-3)


def test_missing_slice_file(series):
    (series / '007.png').unlink()
    # the 2.5 mm neighbours of key 6 at 5 mm spacing need slice 7
    with pytest.raises(FileNotFoundError, match='007.png'):
        LoadDeepLesionSlices()(_results(series))


def test_8bit_png(series):
    cv2.imwrite(str(series / '005.png'), np.full((H, W), 100, np.uint8))
    # an 8-bit export has lost the HU
    with pytest.raises(ValueError, match=r'005\.png is a uint8 image.*16-bit'):
        LoadDeepLesionSlices()(_results(series))


def test_slice_of_another_size(series):
    cv2.imwrite(str(series / '008.png'), np.zeros((H, W + 1), np.uint16))
    # slices of one series share their size
    with pytest.raises(ValueError, match='008.png has shape'):
        LoadDeepLesionSlices()(_results(series))


def test_bad_results(series):
    loader = LoadDeepLesionSlices()
    # a box beyond the right border of the 8-pixel-wide image
    with pytest.raises(ValueError, match='not inside the 8x6'):
        loader(_results(series, instances=[dict(bbox=[2, 1, 9, 4])]))
    # a box is fine when the check is off
    LoadDeepLesionSlices(check_boxes=False)(
        _results(series, instances=[dict(bbox=[2, 1, 9, 4])]))
    # no slice interval
    results = _results(series)
    del results['slice_intv']
    with pytest.raises(KeyError, match='slice_intv'):
        loader(results)
    # zero slice interval
    with pytest.raises(ValueError, match='slice_intv'):
        loader(_results(series, slice_intv=0))
    # key slice outside the slice range
    with pytest.raises(ValueError, match='outside its slice_range'):
        loader(_results(series, key=6, slice_range=(7, 12)))
    # reversed slice range
    with pytest.raises(ValueError, match='slice_range'):
        loader(_results(series, slice_range=(12, 1)))


def test_bad_arguments():
    # even number of slices: no middle slice
    with pytest.raises(ValueError, match='num_slices'):
        LoadDeepLesionSlices(num_slices=8)
    # zero slices
    with pytest.raises(ValueError, match='num_slices'):
        LoadDeepLesionSlices(num_slices=0)
    # non-positive spacing
    with pytest.raises(ValueError, match='slice_spacing'):
        LoadDeepLesionSlices(slice_spacing=0)
    # empty window
    with pytest.raises(ValueError, match='hu_window'):
        LoadDeepLesionSlices(hu_window=(100, -100))
    # out_range of three values
    with pytest.raises(ValueError, match='out_range'):
        LoadDeepLesionSlices(out_range=(0, 1, 2))
    assert 'num_slices=9' in repr(LoadDeepLesionSlices())


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    from tests.helpers.deeplesion_layout import build_deeplesion_layout_from_ct
    return build_deeplesion_layout_from_ct(
        str(tmp_path_factory.mktemp('deeplesion')), context_mm=20.)


def _ct_results(layout, case):
    return dict(
        img_path=f"{layout['images_dir']}/{case['folder']}/"
        f"{case['key_slice']:03d}.png",
        slice_intv=case['spacing'][2],
        slice_range=list(case['slice_range']),
        instances=[dict(bbox=list(case['bbox']), bbox_label=0,
                        ignore_flag=0)])


def test_real_ct_slices(layout):
    import nrrd

    from tests.helpers.data_cache import fetch_pyradiomics_ct
    case = layout['cases'][1]  # lung2, 5 mm slices
    image, _ = nrrd.read(fetch_pyradiomics_ct()[1]['image'])
    key_z = case['key_slice'] - 1
    out = LoadDeepLesionSlices()(_ct_results(layout, case))
    assert out['img'].shape == (512, 512, 9)
    # the middle slice is the key slice (rows = NRRD y, columns = NRRD x)
    key_hu = image[:, :, key_z].T.astype(np.float64)
    np.testing.assert_allclose(out['img'][..., 4], _windowed(key_hu),
                               atol=1e-3)
    # 2.5 mm above: halfway to the previous 5 mm slice
    half = (key_hu + image[:, :, key_z - 1].T) / 2
    np.testing.assert_allclose(out['img'][..., 3], _windowed(half),
                               atol=1e-3)
    # a CT has air, soft tissue and bone: the window is used
    assert out['img'].min() < 5 and out['img'].max() > 150


def test_real_ct_through_mmdet_transforms(layout):
    case = layout['cases'][1]
    pipeline = Compose([
        DET_TRANSFORMS.build(cfg) for cfg in [
            dict(type='LoadDeepLesionSlices'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(320, 192), keep_ratio=False),
            dict(type='RandomFlip', prob=1., direction='vertical'),
            dict(type='SlicesToVolume', flip_prob=1.),
            dict(type='PackDetVolumeInputs'),
        ]
    ])
    plain = LoadDeepLesionSlices()(_ct_results(layout, case))['img']
    packed = pipeline(_ct_results(layout, case))
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == torch.Size([1, 9, 192, 320])
    assert inputs.dtype == torch.float32
    assert sample.img_shape == (192, 320)
    assert sample.ori_shape == (512, 512)
    # box scaled by (320/512, 192/512) and flipped upside down
    x1, y1, x2, y2 = case['bbox']
    sx, sy = 320 / 512, 192 / 512
    expected = [x1 * sx, 192 - y2 * sy, x2 * sx, 192 - y1 * sy]
    np.testing.assert_allclose(
        sample.gt_instances.bboxes.tensor.numpy(), [expected], atol=1e-4)
    # z flip: the first slice of the volume is the last loaded one, and
    # the vertical flip turned the rows upside down
    resized = cv2.resize(plain[..., 8], (320, 192),
                         interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(inputs[0, 0].numpy(), resized[::-1],
                               atol=1e-3)


def test_layout_key_slice_pipeline_is_repeatable(layout):
    case = layout['cases'][0]
    loader = LoadDeepLesionSlices()
    a = loader(_ct_results(layout, case))
    b = loader(copy.deepcopy(_ct_results(layout, case)))
    assert np.array_equal(a['img'], b['img'])
