import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

from svd_mm.models.data_preprocessors import SegVolumeDataPreprocessor
from svd_mm.structures import VoxelData


def _batch(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for shape in shapes:
        inputs.append(
            torch.randint(
                0, 256, (1, ) + shape, generator=generator, dtype=torch.uint8))
        gt = torch.randint(0, 3, (1, ) + shape, generator=generator)
        samples.append(
            SegDataSample(
                gt_sem_seg=VoxelData(data=gt),
                metainfo=dict(img_shape=shape, ori_shape=shape)))
    return dict(inputs=inputs, data_samples=samples)


# [volume shapes (D, H, W), pad_size_divisor, batch (D, H, W), pad_shapes]
PAD_CASES = [
    [[(3, 10, 12)], 1, (3, 10, 12), [(3, 10, 12)]],
    [[(4, 10, 12), (4, 7, 15)], 1, (4, 10, 15), [(4, 10, 12), (4, 7, 15)]],
    [[(4, 10, 12), (4, 7, 15)], 8, (4, 16, 16), [(4, 16, 16), (4, 8, 16)]],
]


@pytest.mark.parametrize('shapes,divisor,batch_shape,pad_shapes', PAD_CASES)
def test_pads_labels_like_volumes(shapes, divisor, batch_shape, pad_shapes):
    data = _batch(shapes)
    originals = [s.gt_sem_seg.data.clone() for s in data['data_samples']]
    preprocessor = SegVolumeDataPreprocessor(
        mean=[100.], std=[50.], pad_size_divisor=divisor, pad_value=-7)
    out = preprocessor(data)
    inputs = out['inputs']
    assert inputs.shape == torch.Size((len(shapes), 1) + batch_shape)
    for i, (shape, sample) in enumerate(zip(shapes, out['data_samples'])):
        d, h, w = shape
        gt = sample.gt_sem_seg.data
        assert gt.shape == torch.Size((1, ) + batch_shape)
        assert torch.equal(gt[:, :, :h, :w], originals[i])
        assert (gt[:, :, h:] == 255).all() and (gt[:, :, :, w:] == 255).all()
        assert (inputs[i, :, :, h:] == -7).all()
        assert sample.batch_input_shape == batch_shape
        assert sample.pad_shape == pad_shapes[i]
        # the other metainfo is kept
        assert sample.img_shape == shape


def test_seg_pad_val_and_no_labels():
    data = _batch([(2, 5, 6), (2, 6, 5)])
    out = SegVolumeDataPreprocessor(seg_pad_val=0)(data)
    gt = out['data_samples'][0].gt_sem_seg.data
    assert gt.shape == torch.Size([1, 2, 6, 6]) and (gt[:, :, 5] == 0).all()
    inputs = [torch.zeros(1, 2, 5, 6), torch.zeros(1, 2, 6, 5)]
    out = SegVolumeDataPreprocessor()(dict(inputs=inputs))
    assert out['inputs'].shape == torch.Size([2, 1, 2, 6, 6])
    assert out['data_samples'] is None


def test_bad_labels():
    data = _batch([(2, 5, 6)])
    sample = data['data_samples'][0]
    sample.gt_sem_seg = VoxelData(data=torch.zeros(1, 3, 5, 6))
    # the label volume has another depth than the volume
    with pytest.raises(
            ValueError,
            match=r'gt_sem_seg of sample 0 has shape '
            r'\(1, 3, 5, 6\)'):
        SegVolumeDataPreprocessor()(data)


def test_built_in_mmseg_scope():
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        preprocessor = MODELS.build(
            dict(type='SegVolumeDataPreprocessor', mean=[0.], std=[1.]))
    assert isinstance(preprocessor, SegVolumeDataPreprocessor)
    assert preprocessor.seg_pad_val == 255


def _map_batch(shapes, seed=0):
    """Pseudo-3D volumes (1, 3, H, W) with (1, H, W) label maps."""
    from mmengine.structures import PixelData
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for shape in shapes:
        inputs.append(
            torch.randint(
                0, 256, (1, 3) + shape, generator=generator,
                dtype=torch.uint8))
        gt = torch.randint(0, 150, (1, ) + shape, generator=generator)
        samples.append(
            SegDataSample(
                gt_sem_seg=PixelData(data=gt),
                metainfo=dict(img_shape=shape, ori_shape=shape)))
    return dict(inputs=inputs, data_samples=samples)


def test_label_maps_of_2d_segmentors():
    preprocessor = SegVolumeDataPreprocessor(
        pad_size_divisor=8, seg_pad_val=255, label_dims=2)
    data = _map_batch([(10, 12), (7, 15)])
    originals = [s.gt_sem_seg.data.clone() for s in data['data_samples']]
    out = preprocessor(data, training=True)
    assert out['inputs'].shape == (2, 1, 3, 16, 16)
    for sample, gt, (h, w) in zip(out['data_samples'], originals,
                                  [(10, 12), (7, 15)]):
        # (H, W) metainfo as mmseg's, padding (left, right, top, bottom)
        assert sample.batch_input_shape == (16, 16)
        assert sample.pad_shape == (16, 16)
        assert sample.padding_size == [0, 16 - w, 0, 16 - h]
        padded = sample.gt_sem_seg.data
        assert padded.shape == (1, 16, 16)
        assert torch.equal(padded[:, :h, :w], gt)
        assert (padded[:, h:] == 255).all() and (padded[:, :, w:] == 255).all()
    # testing: mmseg's maps stay at their (original) size
    data = _map_batch([(10, 12)])
    out = preprocessor(data, training=False)
    assert out['data_samples'][0].gt_sem_seg.shape == (10, 12)
    assert out['data_samples'][0].padding_size == [0, 4, 0, 6]


def test_label_dims_is_2_or_3():
    # label maps (2) or label volumes (3) only
    with pytest.raises(ValueError, match='label_dims must be 2'):
        SegVolumeDataPreprocessor(label_dims=4)
    # a label volume where maps are expected
    data = _batch([(3, 10, 12)])
    with pytest.raises(ValueError, match=r'does not fit \(1, H, W\)'):
        SegVolumeDataPreprocessor(label_dims=2)(data, training=True)
