"""3D volume transforms and LoadNoduleNpz on a real chest CT (pyradiomics
lung1: 512x512x48, 5 mm slices, with a lesion mask)."""
import copy

import numpy as np
import pytest
from mmcv.transforms.utils import cache_random_params
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from svd_mm.datasets.transforms import (CenterCrop3D, LoadNoduleNpz,
                                        RandomCrop3D, RandomFlip3D,
                                        RandomRot90_3D, ScaleIntensity)
from tests.helpers.data_cache import fetch_pyradiomics_ct


@pytest.fixture(scope='module')
def ct_region():
    """A non-cubic (D, H, W) = (12, 40, 56) region of the real CT around the
    lesion, windowed to uint8 like the LIDC-IDRI release, with its mask."""
    import nrrd
    case = fetch_pyradiomics_ct()[0]
    image = nrrd.read(case['image'])[0].transpose(2, 1, 0)  # (z, y, x)
    label = nrrd.read(case['label'])[0].transpose(2, 1, 0)
    zc, yc, xc = np.argwhere(label > 0).mean(0).round().astype(int)
    box = np.s_[zc - 6:zc + 6, yc - 20:yc + 20, xc - 28:xc + 28]
    hu = image[box].astype(np.float32)
    voxel = np.round(np.clip((hu + 1024) / 1424 * 255, 0, 255))
    return voxel.astype(np.uint8), (label[box] > 0).astype(np.uint8)


def _results(ct_region, with_seg=True):
    voxel, mask = ct_region
    results = dict(img=voxel[None].copy(), img_shape=voxel.shape,
                   img_path='lung1_region')
    if with_seg:
        results['gt_seg_map'] = mask.copy()
        results['seg_fields'] = ['gt_seg_map']
    return results


def test_real_region(ct_region):
    voxel, mask = ct_region
    assert voxel.shape == mask.shape == (12, 40, 56)
    # the lesion (soft tissue) is much brighter than the lung around it
    assert 300 < mask.sum() < 1000
    assert voxel[mask > 0].mean() > voxel[mask == 0].mean() + 50


# ----------------------------------------------------------------------------
# LoadNoduleNpz


@pytest.fixture
def npz_file(ct_region, tmp_path):
    voxel, mask = ct_region
    path = tmp_path / 'lung1_nodule.npz'
    np.savez(path, voxel=voxel, answer1=mask.astype(bool),
             answer2=np.zeros_like(mask))
    return str(path)


def test_load_nodule_npz_cls(ct_region, npz_file):
    results = LoadNoduleNpz()(dict(img_path=npz_file))
    assert results['img'].shape == (1, 12, 40, 56)
    assert results['img'].dtype == np.uint8
    np.testing.assert_array_equal(results['img'][0], ct_region[0])
    assert results['img_shape'] == results['ori_shape'] == (12, 40, 56)
    assert 'gt_seg_map' not in results and 'seg_fields' not in results
    results = LoadNoduleNpz(to_float32=True)(dict(img_path=npz_file))
    assert results['img'].dtype == np.float32


def test_load_nodule_npz_seg(ct_region, npz_file):
    results = LoadNoduleNpz(with_seg=True)(
        dict(img_path=npz_file, seg_fields=[]))
    assert results['gt_seg_map'].shape == (12, 40, 56)
    assert results['gt_seg_map'].dtype == np.uint8  # bool in the file
    np.testing.assert_array_equal(results['gt_seg_map'], ct_region[1])
    assert results['seg_fields'] == ['gt_seg_map']
    # the dataset's mask_key picks another rater
    results = LoadNoduleNpz(with_seg=True)(
        dict(img_path=npz_file, mask_key='answer2'))
    assert results['gt_seg_map'].sum() == 0
    # the argument wins over the dataset's key
    results = LoadNoduleNpz(with_seg=True, mask_key='answer1')(
        dict(img_path=npz_file, mask_key='answer2'))
    assert results['gt_seg_map'].sum() == ct_region[1].sum()
    assert repr(LoadNoduleNpz(with_seg=True)) == (
        "LoadNoduleNpz(with_seg=True, voxel_key='voxel', mask_key=None, "
        'to_float32=False, backend_args=None)')


def test_load_nodule_npz_errors(ct_region, npz_file, tmp_path):
    # missing file: the message names the path
    missing = str(tmp_path / 'lidc9_9.npz')
    with pytest.raises(FileNotFoundError, match='lidc9_9.npz'):
        LoadNoduleNpz()(dict(img_path=missing))
    # missing mask key: names the file, the key and the keys it has
    with pytest.raises(KeyError, match=r"no key 'answer4'.*'answer1'"):
        LoadNoduleNpz(with_seg=True, mask_key='answer4')(
            dict(img_path=npz_file))
    # a 2D array is not a volume
    flat = str(tmp_path / 'flat.npz')
    np.savez(flat, voxel=ct_region[0][0])
    with pytest.raises(ValueError, match=r'\(D, H, W\) volume'):
        LoadNoduleNpz()(dict(img_path=flat))
    # mask and volume of different shapes
    bad = str(tmp_path / 'bad.npz')
    np.savez(bad, voxel=ct_region[0], answer1=ct_region[1][:, :, :10])
    with pytest.raises(ValueError, match='does not match'):
        LoadNoduleNpz(with_seg=True)(dict(img_path=bad))
    # no img_path in the results
    with pytest.raises(KeyError, match='img_path'):
        LoadNoduleNpz()(dict())
    # a key must be a non-empty string
    with pytest.raises(TypeError, match='voxel_key'):
        LoadNoduleNpz(voxel_key='')


# ----------------------------------------------------------------------------
# CenterCrop3D / RandomCrop3D

# [crop_size, expected crop_bbox (d0, h0, w0, d1, h1, w1)] on (12, 40, 56)
CENTER_CASES = [
    [(8, 32, 48), (2, 4, 4, 10, 36, 52)],
    [(12, 40, 56), (0, 0, 0, 12, 40, 56)],
    [(5, 17, 9), (3, 11, 23, 8, 28, 32)],
    [(16, 40, 64), (-2, 0, -4, 14, 40, 60)],  # padded on D and W
]


@pytest.mark.parametrize('crop_size,bbox', CENTER_CASES)
def test_center_crop_3d_exact(ct_region, crop_size, bbox):
    results = CenterCrop3D(crop_size)(_results(ct_region))
    assert results['crop_bbox'] == bbox
    assert results['img'].shape == (1, ) + crop_size
    assert results['gt_seg_map'].shape == crop_size
    assert results['img_shape'] == crop_size
    assert results['img'].flags.c_contiguous
    d0, h0, w0, d1, h1, w1 = bbox
    # reference: pad the volume generously, then slice
    voxel, mask = ct_region
    p = 8
    ref_img = np.pad(voxel, p, constant_values=0)
    ref_seg = np.pad(mask, p, constant_values=255)
    box = np.s_[d0 + p:d1 + p, h0 + p:h1 + p, w0 + p:w1 + p]
    np.testing.assert_array_equal(results['img'][0], ref_img[box])
    np.testing.assert_array_equal(results['gt_seg_map'], ref_seg[box])


def test_center_crop_3d_jitter(ct_region):
    transform = CenterCrop3D((8, 32, 48), jitter=(1, 3, 2))
    np.random.seed(0)
    starts = np.array([
        transform(_results(ct_region))['crop_bbox'][:3] for _ in range(200)
    ])
    offsets = starts - np.array([2, 4, 4])
    for axis, jitter in enumerate((1, 3, 2)):
        # every shift in [-jitter, jitter] occurs, nothing else
        assert set(offsets[:, axis]) == set(range(-jitter, jitter + 1))
    # the mask moves with the image: the lesion stays on bright voxels
    results = transform(_results(ct_region))
    lesion = results['gt_seg_map'] == 1
    assert results['img'][0][lesion].mean() > \
        results['img'][0][~lesion].mean() + 50
    assert repr(transform) == ('CenterCrop3D(crop_size=(8, 32, 48), '
                               'jitter=(1, 3, 2), pad_val=0, '
                               'seg_pad_val=255)')


def test_center_crop_3d_pad_values(ct_region):
    results = CenterCrop3D((14, 40, 56), pad_val=7, seg_pad_val=9)(
        _results(ct_region))
    assert (results['img'][0, 0] == 7).all() and \
        (results['img'][0, -1] == 7).all()
    assert (results['gt_seg_map'][[0, -1]] == 9).all()
    np.testing.assert_array_equal(results['img'][0, 1:-1], ct_region[0])


def test_crop_3d_bad_args(ct_region):
    # crop_size must be positive
    with pytest.raises(ValueError, match='crop_size'):
        CenterCrop3D(0)
    # crop_size must have 3 entries (D, H, W)
    with pytest.raises(TypeError, match='crop_size'):
        CenterCrop3D((32, 32))
    # crop_size must be integer
    with pytest.raises(TypeError, match='crop_size'):
        RandomCrop3D((32., 32, 32))
    # jitter must be >= 0
    with pytest.raises(ValueError, match='jitter'):
        CenterCrop3D(8, jitter=-1)
    # cat_max_ratio is a fraction in (0, 1]
    with pytest.raises(ValueError, match='cat_max_ratio'):
        RandomCrop3D(8, cat_max_ratio=0)
    # img without the channel axis
    with pytest.raises(ValueError, match=r'\(C, D, H, W\)'):
        CenterCrop3D(8)(dict(img=ct_region[0]))
    # a seg field that does not match the image
    results = _results(ct_region)
    results['gt_seg_map'] = results['gt_seg_map'][:, :-1]
    with pytest.raises(ValueError, match='gt_seg_map of shape'):
        RandomCrop3D(8)(results)
    # no img at all
    with pytest.raises(KeyError, match="'img'"):
        RandomFlip3D()(dict(gt_seg_map=ct_region[1]))


def test_random_crop_3d_positions(ct_region):
    transform = RandomCrop3D((8, 32, 48))
    np.random.seed(1)
    seen = []
    for _ in range(300):
        results = transform(_results(ct_region))
        d0, h0, w0, d1, h1, w1 = results['crop_bbox']
        seen.append((d0, h0, w0))
        # the crop is exactly the box of the input, for image and mask
        np.testing.assert_array_equal(results['img'][0],
                                      ct_region[0][d0:d1, h0:h1, w0:w1])
        np.testing.assert_array_equal(results['gt_seg_map'],
                                      ct_region[1][d0:d1, h0:h1, w0:w1])
    seen = np.array(seen)
    # uniform over all positions where the box fits: [0, size - crop]
    assert seen.min(0).tolist() == [0, 0, 0]
    assert seen.max(0).tolist() == [4, 8, 8]


def test_random_crop_3d_pads_small_axes(ct_region):
    # D = 12 < 16: the volume sits at a random place of the padded box
    transform = RandomCrop3D((16, 32, 32), seg_pad_val=255)
    np.random.seed(2)
    starts = set()
    for _ in range(60):
        results = transform(_results(ct_region))
        d0 = results['crop_bbox'][0]
        starts.add(d0)
        assert -4 <= d0 <= 0
        inside = slice(-d0, -d0 + 12)
        seg = results['gt_seg_map']
        assert (np.delete(seg, np.r_[inside], axis=0) == 255).all()
        assert (seg[inside] != 255).all()
    assert starts == {-4, -3, -2, -1, 0}


def test_random_crop_3d_cat_max_ratio(ct_region):
    """Re-drawing crops that hold one class only keeps the lesion in more
    crops than plain random cropping."""
    def lesion_hits(transform):
        np.random.seed(3)
        return sum(
            transform(_results(ct_region))['gt_seg_map'].any()
            for _ in range(40))

    plain = lesion_hits(RandomCrop3D((6, 12, 12)))
    balanced = lesion_hits(RandomCrop3D((6, 12, 12), cat_max_ratio=0.999))
    assert balanced > plain
    assert repr(RandomCrop3D(8)) == (
        'RandomCrop3D(crop_size=(8, 8, 8), cat_max_ratio=1.0, '
        'ignore_index=255, pad_val=0, seg_pad_val=255)')


# ----------------------------------------------------------------------------
# RandomFlip3D


@pytest.mark.parametrize('axes', [(0, ), (1, ), (2, ), (0, 2), (0, 1, 2)])
def test_random_flip_3d_exact(ct_region, axes):
    results = RandomFlip3D(prob=1., axes=axes)(_results(ct_region))
    assert results['flip_axes'] == axes
    np.testing.assert_array_equal(results['img'][0],
                                  np.flip(ct_region[0], axes))
    np.testing.assert_array_equal(results['gt_seg_map'],
                                  np.flip(ct_region[1], axes))
    assert results['img'].flags.c_contiguous
    assert 'flip' not in results  # no 2D flip for mmseg to undo


def test_random_flip_3d_twice_is_identity(ct_region):
    transform = RandomFlip3D(prob=0.5)
    np.random.seed(4)
    recorded = set()
    for _ in range(16):
        results = _results(ct_region)
        with cache_random_params(transform):
            results = transform(results)
            recorded.add(results['flip_axes'])
            # what is recorded is what was done, to image and mask alike
            np.testing.assert_array_equal(
                results['img'][0], np.flip(ct_region[0],
                                           results['flip_axes']))
            np.testing.assert_array_equal(
                results['gt_seg_map'],
                np.flip(ct_region[1], results['flip_axes']))
            results = transform(results)
        np.testing.assert_array_equal(results['img'][0], ct_region[0])
        np.testing.assert_array_equal(results['gt_seg_map'], ct_region[1])
    assert len(recorded) > 4  # several of the 8 combinations occurred
    assert RandomFlip3D(prob=0.)(_results(ct_region))['flip_axes'] == ()


def test_random_flip_3d_bad_args():
    # prob is a probability
    with pytest.raises(ValueError, match='prob'):
        RandomFlip3D(prob=1.5)
    # axes are spatial axes 0, 1, 2 (D, H, W), the channel is not one
    with pytest.raises(ValueError, match='axes'):
        RandomFlip3D(axes=(1, 3))
    # axes must be distinct
    with pytest.raises(ValueError, match='axes'):
        RandomFlip3D(axes=(1, 1))
    assert repr(RandomFlip3D(axes=(2, 0))) == \
        'RandomFlip3D(prob=0.5, axes=(0, 2))'


# ----------------------------------------------------------------------------
# RandomRot90_3D


@pytest.mark.parametrize('plane,shape_k1', [
    [(1, 2), (12, 56, 40)],
    [(0, 1), (40, 12, 56)],
    [(0, 2), (56, 40, 12)],
])
def test_random_rot90_3d_exact(ct_region, plane, shape_k1):
    transform = RandomRot90_3D(prob=1., axes=(plane, ))
    np.random.seed(5)
    ks = set()
    for _ in range(20):
        results = transform(_results(ct_region))
        (k, ) = results['rot90_k']
        ks.add(k)
        expected = np.rot90(ct_region[0], k, axes=plane)
        np.testing.assert_array_equal(results['img'][0], expected)
        np.testing.assert_array_equal(
            results['gt_seg_map'], np.rot90(ct_region[1], k, axes=plane))
        assert results['img_shape'] == expected.shape
        assert results['img_shape'] == (shape_k1 if k % 2 else
                                        ct_region[0].shape)
        assert results['rot90_axes'] == (plane, )
    assert ks == {1, 2, 3}


@pytest.mark.parametrize('plane', [(1, 2), (0, 1), (0, 2)])
def test_random_rot90_3d_four_times_is_identity(ct_region, plane):
    transform = RandomRot90_3D(prob=1., axes=(plane, ))
    np.random.seed(6)
    for _ in range(6):
        results = _results(ct_region)
        with cache_random_params(transform):  # the same k four times
            for _ in range(4):
                results = transform(results)
        np.testing.assert_array_equal(results['img'][0], ct_region[0])
        np.testing.assert_array_equal(results['gt_seg_map'], ct_region[1])
        assert results['img_shape'] == (12, 40, 56)
    # prob=0 never rotates
    assert RandomRot90_3D(prob=0.)(_results(ct_region))['rot90_k'] == (0, )


def test_random_rot90_3d_several_planes_is_invertible(ct_region):
    """ACS's rotation: three planes in turn; undoing the recorded turns in
    reverse order restores image and mask."""
    transform = RandomRot90_3D(prob=0.75, axes=((0, 1), (0, 2), (1, 2)))
    np.random.seed(8)
    for _ in range(8):
        results = transform(_results(ct_region))
        img, seg = results['img'][0], results['gt_seg_map']
        assert results['img_shape'] == img.shape == seg.shape
        for plane, k in reversed(list(zip(results['rot90_axes'],
                                          results['rot90_k']))):
            img = np.rot90(img, -k, axes=plane)
            seg = np.rot90(seg, -k, axes=plane)
        np.testing.assert_array_equal(img, ct_region[0])
        np.testing.assert_array_equal(seg, ct_region[1])


def test_random_rot90_3d_bad_args():
    # prob is a probability
    with pytest.raises(ValueError, match='prob'):
        RandomRot90_3D(prob=-0.1)
    # a plane needs two distinct axes
    with pytest.raises(ValueError, match='pairs of distinct'):
        RandomRot90_3D(axes=((1, 1), ))
    # axes is a sequence of planes, not one plane
    with pytest.raises(ValueError, match='pairs of distinct'):
        RandomRot90_3D(axes=(1, 2))
    # at least one plane
    with pytest.raises(ValueError, match='at least one plane'):
        RandomRot90_3D(axes=())
    assert repr(RandomRot90_3D()) == \
        'RandomRot90_3D(prob=0.75, axes=((1, 2),))'


# ----------------------------------------------------------------------------
# ScaleIntensity


def test_scale_intensity(ct_region):
    results = ScaleIntensity()(_results(ct_region))
    img = results['img']
    assert img.dtype == np.float32 and img.shape == (1, 12, 40, 56)
    # ACS: voxel / 255 - 1
    np.testing.assert_allclose(img[0], ct_region[0] / 255. - 1, atol=1e-6)
    assert -1. <= img.min() and img.max() <= 0.
    assert results['gt_seg_map'].dtype == np.uint8  # labels untouched
    centred = ScaleIntensity(offset=-0.5)(_results(ct_region))['img']
    np.testing.assert_allclose(centred, img + 0.5, atol=1e-6)
    # clipping before scaling, e.g. raw HU
    hu = dict(img=np.array([[[[-2000., 0., 3000.]]]]))
    out = ScaleIntensity(scale=1 / 1424., offset=1024 / 1424.,
                         clip=(-1024, 400))(hu)['img']
    np.testing.assert_allclose(out.ravel(), [0., 1024 / 1424., 1.],
                               rtol=1e-6)
    assert repr(ScaleIntensity(scale=0.5, offset=0.)) == \
        'ScaleIntensity(scale=0.5, offset=0.0, clip=None)'


def test_scale_intensity_bad_args():
    # scale 0 would erase the image
    with pytest.raises(ValueError, match='scale must not be 0'):
        ScaleIntensity(scale=0)
    # a non-finite offset
    with pytest.raises(ValueError, match='offset'):
        ScaleIntensity(offset=float('nan'))
    # clip must be (low, high)
    with pytest.raises(ValueError, match='clip'):
        ScaleIntensity(clip=(400, -1024))
    # no image
    with pytest.raises(KeyError, match="'img'"):
        ScaleIntensity()(dict())


# ----------------------------------------------------------------------------
# The pipeline, built from configs in each toolbox scope


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_pipeline_from_config(ct_region, npz_file, scope):
    pipeline = [
        dict(type='LoadNoduleNpz', with_seg=True),
        dict(type='CenterCrop3D', crop_size=(8, 32, 32), jitter=2),
        dict(type='RandomFlip3D'),
        dict(type='RandomRot90_3D', axes=((0, 1), (0, 2), (1, 2))),
        dict(type='ScaleIntensity'),
    ]
    with DefaultScope.overwrite_default_scope(scope):
        transforms = Compose(copy.deepcopy(pipeline))
    np.random.seed(7)
    for _ in range(4):
        results = transforms(dict(img_path=npz_file))
        img, seg = results['img'], results['gt_seg_map']
        assert img.dtype == np.float32 and img.shape[0] == 1
        assert img.shape[1:] == seg.shape == results['img_shape']
        assert sorted(seg.shape) == [8, 32, 32]
        # image and mask moved together: the lesion is still bright
        lesion = seg == 1
        assert lesion.any()
        assert img[0][lesion].mean() > img[0][~lesion].mean() + 0.2
