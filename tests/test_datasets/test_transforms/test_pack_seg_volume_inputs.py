import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

from svd_mm.datasets.transforms import PackSegVolumeInputs
from svd_mm.structures import VoxelData

# [img shape, packed inputs shape]
IMG_CASES = [
    [(1, 6, 10, 12), (1, 6, 10, 12)],
    [(2, 5, 7, 9), (2, 5, 7, 9)],
    [(6, 10, 12), (1, 6, 10, 12)],
]


@pytest.mark.parametrize('img_shape,inputs_shape', IMG_CASES)
def test_pack_volume_and_labels(img_shape, inputs_shape):
    rng = np.random.default_rng(0)
    img = rng.integers(-1024, 2000, img_shape).astype(np.int16)
    gt = rng.integers(0, 3, img_shape[-3:]).astype(np.uint8)
    results = dict(
        img=img,
        gt_seg_map=gt,
        img_path='case.nrrd',
        seg_map_path='case_label.nrrd',
        ori_shape=img_shape[-3:],
        img_shape=img_shape[-3:],
        spacing=(5.0, 0.7, 0.7),
        affine=np.eye(4),
        case_id='case',
        not_a_meta_key=1)
    packed = PackSegVolumeInputs()(results)
    inputs = packed['inputs']
    assert inputs.shape == torch.Size(inputs_shape)
    assert inputs.dtype == torch.int16
    assert np.array_equal(inputs.numpy().reshape(img.shape), img)
    sample = packed['data_samples']
    assert isinstance(sample, SegDataSample)
    assert isinstance(sample.gt_sem_seg, VoxelData)
    assert sample.gt_sem_seg.data.shape == torch.Size((1, ) + img_shape[-3:])
    assert sample.gt_sem_seg.data.dtype == torch.int64
    assert np.array_equal(sample.gt_sem_seg.data[0].numpy(), gt)
    assert set(sample.metainfo) == {
        'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'spacing',
        'affine', 'case_id'
    }
    assert sample.ori_shape == img_shape[-3:]
    assert sample.spacing == (5.0, 0.7, 0.7)


def test_pack_without_labels_and_non_contiguous():
    img = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    flipped = img[:, ::-1]
    packed = PackSegVolumeInputs(meta_keys=('case_id', ))(
        dict(img=flipped, case_id='x', img_path='ignored'))
    assert packed['inputs'].is_contiguous()
    assert torch.equal(packed['inputs'], torch.from_numpy(flipped.copy()))
    assert 'gt_sem_seg' not in packed['data_samples']
    assert packed['data_samples'].metainfo == dict(case_id='x')


def test_pack_bad_shapes():
    pack = PackSegVolumeInputs()
    # a 2D image
    with pytest.raises(
            ValueError, match=r'got img of shape \(4, 5\) from '
            r'a\.png'):
        pack(dict(img=np.zeros((4, 5)), img_path='a.png'))
    # a label volume with a channel axis
    with pytest.raises(ValueError, match=r'gt_seg_map of shape \(D, H, W\)'):
        pack(
            dict(
                img=np.zeros((1, 3, 4, 5)),
                gt_seg_map=np.zeros((1, 3, 4, 5)),
                seg_map_path='b.nrrd'))
    # a label volume of another size
    with pytest.raises(ValueError, match=r'\(3, 4, 6\) does not match'):
        pack(
            dict(
                img=np.zeros((1, 3, 4, 5)),
                gt_seg_map=np.zeros((3, 4, 6)),
                img_path='c.nrrd'))


def test_registered_in_mmseg_scope_and_repr():
    from mmseg.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmseg'):
        pack = TRANSFORMS.build(dict(type='PackSegVolumeInputs'))
    assert isinstance(pack, PackSegVolumeInputs)
    assert repr(pack).startswith('PackSegVolumeInputs(meta_keys=')
    assert 'spacing' in pack.meta_keys and 'case_id' in pack.meta_keys


def test_pack_label_map_of_a_pseudo_volume():
    from mmengine.structures import PixelData

    from svd_mm.datasets.transforms import RGBToVolume
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (10, 14, 3)).astype(np.uint8)
    gt = rng.integers(0, 150, (10, 14)).astype(np.uint8)
    results = RGBToVolume()(
        dict(img=bgr, gt_seg_map=gt, img_shape=(10, 14), ori_shape=(20, 28)))
    packed = PackSegVolumeInputs()(results)
    assert packed['inputs'].shape == (1, 3, 10, 14)
    # the (H, W) map of a 2D segmentor is packed as mmseg packs it
    gt_sem_seg = packed['data_samples'].gt_sem_seg
    assert isinstance(gt_sem_seg, PixelData)
    assert gt_sem_seg.data.dtype == torch.int64
    assert torch.equal(gt_sem_seg.data[0], torch.from_numpy(gt).long())
    assert packed['data_samples'].img_shape == (10, 14)
    # a test map at the original size (loaded after Resize) is not checked
    results = RGBToVolume()(
        dict(img=bgr, gt_seg_map=np.zeros((20, 28), np.uint8)))
    packed = PackSegVolumeInputs()(results)
    assert packed['data_samples'].gt_sem_seg.shape == (20, 28)
    # neither a map nor a volume
    with pytest.raises(ValueError, match=r'or \(H, W\), but got \(20,\)'):
        PackSegVolumeInputs()(
            dict(img=results['img'], gt_seg_map=np.zeros(20)))
