"""LoadVolumeNifti on LiTS-named real chest CTs: raw volumes preprocessed
on the fly give exactly the files of prepare_lits.py (one code path), and
with ``lazy=True`` the LiTS train pipeline gives the same crops while
reading only their boxes."""
import copy
import os
import os.path as osp
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import TRANSFORMS, DefaultScope

from svd_mm.datasets import LiTSDataset
from svd_mm.datasets.transforms import (CenterCrop3D, LoadVolumeNifti,
                                        RandomCrop3D, RandomFlip3D,
                                        RandomRescale3D)
from svd_mm.datasets.transforms.lazy_volume import LazyNiftiVolume
from svd_mm.utils.volume_io import read_nifti
from tests.helpers.lits_layout import build_lits_layout_from_ct
from tests.helpers.page_cache import page_cache_supported, resident_bytes
from tests.helpers.tools import load_script

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
        'affine_tol=0.001, lazy=False)')


# ----------------------------------------------------------------------------
# lazy=True: views of the prepared files, from which the crops read a box

LITS_CONFIG = REPO / 'configs' / '_base_' / 'datasets' / 'lits.py'


def _prepared(lits, index):
    cases, out = lits
    case = cases[index]
    number = case['case_id'].split('-')[1]
    return dict(
        img_path=str(out / 'images' / f"{case['case_id']}.nii"),
        seg_map_path=str(out / 'labels' / f'segmentation-{number}.nii'),
        original_geometry=read_nifti(case['image']).geometry)


def _train_pipeline(lazy, first_crop):
    """The real LiTS train pipeline with smaller crops (8x64x64 windows)."""
    pipeline = copy.deepcopy(Config.fromfile(str(LITS_CONFIG)).train_pipeline)
    assert pipeline[0] == dict(
        type='LoadVolumeNifti', with_seg=True, lazy=True)
    assert [t['type'] for t in pipeline] == [
        'LoadVolumeNifti', 'RandomCrop3D', 'RandomRescale3D', 'RandomCrop3D',
        'RandomFlip3D', 'PackSegVolumeInputs'
    ]
    pipeline[0]['lazy'] = lazy
    pipeline[1]['crop_size'] = first_crop
    pipeline[3]['crop_size'] = (8, 64, 64)
    return pipeline


# (8, 120, 100) is larger than the 96x96 volumes in-plane: padded boxes
@pytest.mark.parametrize('first_crop', [(8, 80, 80), (8, 120, 100)])
def test_lazy_train_pipeline_equals_eager(lits, first_crop):
    _, out = lits
    with DefaultScope.overwrite_default_scope('mmseg'):
        eager, lazy = (LiTSDataset(
            data_root=str(out),
            split='train',
            pipeline=_train_pipeline(flag, first_crop))
                       for flag in (False, True))
    assert len(eager) == 2
    for seed in range(3):
        for i in range(len(eager)):
            np.random.seed(seed)
            a = eager[i]
            np.random.seed(seed)
            b = lazy[i]
            assert a['inputs'].shape == (1, 8, 64, 64)
            assert a['inputs'].dtype == b['inputs'].dtype == torch.uint8
            assert a['inputs'].numpy().tobytes() == \
                b['inputs'].numpy().tobytes()
            seg_a = a['data_samples'].gt_sem_seg.data
            seg_b = b['data_samples'].gt_sem_seg.data
            assert seg_a.dtype == seg_b.dtype
            assert seg_a.numpy().tobytes() == seg_b.numpy().tobytes()
            assert a['data_samples'].metainfo == b['data_samples'].metainfo


def test_lazy_keys_and_views(lits):
    results = _prepared(lits, 1)
    eager = LoadVolumeNifti(with_seg=True)(copy.deepcopy(results))
    lazy = LoadVolumeNifti(with_seg=True, lazy=True)(copy.deepcopy(results))
    for key in ('img_shape', 'ori_shape', 'affine', 'spacing',
                'original_geometry', 'seg_fields'):
        assert lazy[key] == eager[key], key
    img, seg = lazy['img'], lazy['gt_seg_map']
    assert isinstance(img, LazyNiftiVolume)
    assert isinstance(seg, LazyNiftiVolume)
    assert img.shape == eager['img'].shape and img.ndim == 4
    assert seg.shape == eager['gt_seg_map'].shape
    assert img.dtype == seg.dtype == np.uint8
    # boxes, ints, steps, an ellipsis and the whole volume
    for key in [(0, slice(3, 20), slice(10, 90), slice(5, 60)),
                (slice(None), -1, slice(None, None, -3), 7), (Ellipsis, 40),
                (0, slice(-100, 1000))]:
        box = img[key]
        assert box.flags.c_contiguous and box.dtype == np.uint8
        np.testing.assert_array_equal(box, eager['img'][key])
        np.testing.assert_array_equal(seg[key[1:]],
                                      eager['gt_seg_map'][key[1:]])
    np.testing.assert_array_equal(np.asarray(img), eager['img'])
    np.testing.assert_array_equal(np.asarray(seg), eager['gt_seg_map'])
    # to_float32 casts the boxes
    img32 = LoadVolumeNifti(to_float32=True, lazy=True)(
        copy.deepcopy(results))['img']
    assert img32.dtype == np.float32 and img32[0, 2].dtype == np.float32
    np.testing.assert_array_equal(img32[0, 2], eager['img'][0, 2])


def test_lazy_is_a_bool():
    # one lazy reader (nibabel's proxy): no reader names any more
    with pytest.raises(TypeError, match="lazy must be a bool, got 'mmap'"):
        LoadVolumeNifti(lazy='mmap')


@pytest.mark.parametrize('transform', [
    RandomCrop3D(crop_size=(8, 64, 64), cat_max_ratio=0.75),
    RandomCrop3D(crop_size=(100, 100, 64)),
    CenterCrop3D(crop_size=(8, 48, 48), jitter=(3, 20, 20)),
    RandomFlip3D(prob=0.5, axes=(0, 1, 2)),
    RandomRescale3D(scale_range=(0.9, 1.1)),
])
def test_lazy_volume_transforms(lits, transform):
    """Crops read their box; other transforms read the whole volume."""
    results = _prepared(lits, 0)
    loaded = LoadVolumeNifti(with_seg=True)(copy.deepcopy(results))
    loaded_lazy = LoadVolumeNifti(
        with_seg=True, lazy=True)(copy.deepcopy(results))
    for seed in range(3):
        np.random.seed(seed)
        a = transform(copy.deepcopy(loaded))
        np.random.seed(seed)
        b = transform(dict(loaded_lazy))
        assert type(b['img']) is np.ndarray
        assert type(b['gt_seg_map']) is np.ndarray
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert a['img_shape'] == b['img_shape']
        assert a.get('crop_bbox') == b.get('crop_bbox')


def test_lazy_pack_without_crop(lits):
    results = _prepared(lits, 2)
    packed = []
    for lazy in (False, True):
        with DefaultScope.overwrite_default_scope('mmseg'):
            pipeline = Compose([
                dict(type='LoadVolumeNifti', with_seg=True, lazy=lazy),
                dict(type='PackSegVolumeInputs')
            ])
        packed.append(pipeline(copy.deepcopy(results)))
    assert torch.equal(packed[0]['inputs'], packed[1]['inputs'])
    assert torch.equal(packed[0]['data_samples'].gt_sem_seg.data,
                       packed[1]['data_samples'].gt_sem_seg.data)


def test_lazy_falls_back_to_eager(lits, tmp_path):
    cases, _ = lits
    case = cases[0]
    # raw volume with preprocessing: the whole volume is needed
    raw = LoadVolumeNifti(with_seg=True, lazy=True, preprocess=PREPROCESS)(
        dict(img_path=case['image'], seg_map_path=case['label']))
    assert type(raw['img']) is np.ndarray
    assert type(raw['gt_seg_map']) is np.ndarray
    # .nii.gz: read whole, once
    results = _prepared(lits, 0)
    gz = dict(results)
    for key in ('img_path', 'seg_map_path'):
        gz[key] = str(tmp_path / (Path(results[key]).name + '.gz'))
        nib.save(nib.load(results[key]), gz[key])
    loaded = LoadVolumeNifti(with_seg=True, lazy=True)(gz)
    assert type(loaded['img']) is np.ndarray
    np.testing.assert_array_equal(
        loaded['img'],
        LoadVolumeNifti()(copy.deepcopy(results))['img'])


def _read_ahead(path):
    """The kernel's read-ahead (bytes) on the block device of ``path``;
    Linux's default of 128 KiB where sysfs does not tell."""
    dev = os.stat(path).st_dev
    block = f'/sys/dev/block/{os.major(dev)}:{os.minor(dev)}'
    for queue in (f'{block}/queue', f'{block}/../queue'):  # disk, partition
        try:
            with open(f'{queue}/read_ahead_kb') as f:
                return int(f.read()) * 1024
        except (OSError, ValueError):
            pass
    return 128 * 1024


def test_lazy_reads_only_the_box(lits):
    results = _prepared(lits, 2)
    paths = [results['img_path'], results['seg_map_path']]
    if not page_cache_supported(paths):
        pytest.skip('the page cache cannot be evicted here')
    loaded = LoadVolumeNifti(with_seg=True, lazy=True)(dict(results))
    size = osp.getsize(paths[0])
    assert loaded['img'].shape == (1, 81, 96, 96)
    # the header and the kernel's read-ahead around it
    before = [resident_bytes(p) for p in paths]
    assert max(before) < size / 4
    box = loaded['img'][0, 60:68, 20:84, 16:80]
    assert box.shape == (8, 64, 64)
    read = resident_bytes(paths[0]) - before[0]
    # 8 runs of 64 rows of 96 voxels, 96 x 96 voxels apart, in 4 KiB pages,
    # and the kernel's read-ahead after them (nibabel reads the file)
    span = 7 * 96 * 96 + 64 * 96
    assert 8 * 64 * 96 <= read <= span + _read_ahead(paths[0]) + 2 * 4096
    assert read < size / 2
    assert resident_bytes(paths[1]) == before[1]
    np.asarray(loaded['gt_seg_map'])
    assert resident_bytes(paths[1]) >= size - 4096


def _save(path, data, slope=None, inter=None):
    img = nib.Nifti1Image(data, np.diag([0.7, 0.7, 1., 1.]))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return str(path)


def test_lazy_checks_the_boxes_read(tmp_path):
    # labels are checked on the boxes read, as the whole map eagerly
    data = np.zeros((6, 5, 4), np.float32)  # (i, j, k)
    data[0, 0, 0] = 0.5
    data[0, 0, 3] = 300
    label = _save(tmp_path / 'label.nii', data)
    image = _save(tmp_path / 'image.nii', np.zeros((6, 5, 4), np.uint8))
    results = dict(img_path=image, seg_map_path=label)
    with pytest.raises(ValueError, match='label.nii holds non-integer'):
        LoadVolumeNifti(with_seg=True)(dict(results))
    seg = LoadVolumeNifti(with_seg=True, lazy=True)(results)['gt_seg_map']
    assert seg[1:3].dtype == np.uint8 and not seg[1:3].any()
    with pytest.raises(ValueError, match='label.nii holds non-integer'):
        seg[0]
    with pytest.raises(ValueError, match=r'label.nii holds labels outside'):
        seg[3]
    # NaN voxels of a float image, on the boxes read
    data = np.ones((6, 5, 4), np.float32)
    data[2, 2, 1] = np.nan
    img = LoadVolumeNifti(lazy=True)(
        dict(img_path=_save(tmp_path / 'nan.nii', data)))['img']
    assert img[:, 2:].shape == (1, 2, 5, 6)
    with pytest.raises(ValueError, match='nan.nii has 1 NaN'):
        img[:, 1]
    # values scaled by the header: nibabel scales the box
    data = np.arange(120, dtype=np.int16).reshape(6, 5, 4)
    path = _save(tmp_path / 'scaled.nii', data, slope=2., inter=-10.)
    img = LoadVolumeNifti(lazy=True)(dict(img_path=path))['img']
    whole = read_nifti(path).array
    assert whole.dtype == img.dtype and whole.dtype.kind == 'f'
    np.testing.assert_array_equal(img[0, 1:3, 2:, ::2],
                                  whole[1:3, 2:, ::2])
    assert whole[0, 0, 1] == 2. * data[1, 0, 0] - 10.
    # a trailing axis of size 1 is dropped
    path = _save(tmp_path / 'x1.nii', data[..., None])
    view = LoadVolumeNifti(lazy=True)(dict(img_path=path))['img']
    assert view.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(view[0, 2], data[:, :, 2].T)


def test_lazy_errors(lits, tmp_path):
    results = _prepared(lits, 0)
    load = LoadVolumeNifti(with_seg=True, lazy=True)
    # a truncated file is named, from its header
    short = tmp_path / 'short.nii'
    with open(results['img_path'], 'rb') as f:
        short.write_bytes(f.read(osp.getsize(results['img_path']) // 2))
    with pytest.raises(ValueError, match=r'short.nii is truncated: \d+ bytes'):
        load(dict(results, img_path=str(short)))
    # or when read, if it was truncated after opening
    copied = tmp_path / 'copied.nii'
    shutil.copy(results['img_path'], copied)
    view = load(dict(results, img_path=str(copied)))['img']
    with open(copied, 'r+b') as f:
        f.truncate(1000)
    with pytest.raises(ValueError, match='copied.nii is truncated'):
        view[0, :2]
    # not 3D
    path = _save(tmp_path / 'four.nii', np.zeros((3, 4, 5, 2), np.uint8))
    with pytest.raises(ValueError, match=r'four.nii holds an array of shape '
                       r'\(3, 4, 5, 2\); expected a 3D volume'):
        load(dict(img_path=path))
    # label of another shape, missing and empty files
    with pytest.raises(ValueError, match='does not match the volume'):
        load(dict(results, seg_map_path=_prepared(lits, 2)['seg_map_path']))
    with pytest.raises(FileNotFoundError, match='nope.nii'):
        load(dict(img_path=str(tmp_path / 'nope.nii')))
    (tmp_path / 'empty.nii').write_bytes(b'')
    with pytest.raises(ValueError, match='empty.nii is empty'):
        load(dict(img_path=str(tmp_path / 'empty.nii')))
    # indexing a view: ints and slices only
    img = load(copy.deepcopy(results))['img']
    with pytest.raises(TypeError, match='takes ints and slices only'):
        img[0, [1, 2]]
    with pytest.raises(IndexError, match='out of bounds'):
        img[0, img.shape[1]]
    with pytest.raises(IndexError, match='too many indices'):
        img[0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match='copy=False'):
        np.asarray(img, copy=False)
    # a transform of another library gets an array from np.asarray
    assert np.asarray(img, dtype=np.float32).dtype == np.float32
