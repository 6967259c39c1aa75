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
