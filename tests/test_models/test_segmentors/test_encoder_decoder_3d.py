import itertools

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

from svd_mm.models.data_preprocessors import SegVolumeDataPreprocessor
from svd_mm.models.segmentors import EncoderDecoder3D
from svd_mm.structures import VoxelData


def _build(test_cfg=None, out_channels=None, **head_kwargs):
    """A one-stage ResNet3D at full resolution with an FCNHead3D."""
    from mmseg.registry import MODELS
    cfg = dict(
        type='EncoderDecoder3D',
        backbone=dict(
            type='ResNet3D',
            depth=18,
            base_channels=4,
            num_stages=1,
            strides=(1, ),
            slice_strides=(1, ),
            dilations=(1, ),
            stem_stride=1,
            with_maxpool=False,
            out_indices=(0, )),
        decode_head=dict(
            type='FCNHead3D',
            in_channels=4,
            channels=4,
            num_classes=2,
            out_channels=out_channels,
            scale_factors=(1, ),
            dropout_ratio=0,
            **head_kwargs),
        data_preprocessor=dict(
            type='SegVolumeDataPreprocessor', mean=[0.], std=[1.]),
        test_cfg=test_cfg)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def _local_code(crop_size):
    """Window-relative position code z + 10 y + 100 x of a window."""
    d, h, w = crop_size
    z, y, x = np.meshgrid(
        np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    return (z + 10 * y + 100 * x).astype(np.float32)


class PositionModel:
    """Replaces ``encode_decode``: channel 0 repeats the input (a code of
    the absolute position), channel 1 is the window-relative position."""

    def __init__(self):
        self.calls = []

    def __call__(self, crops, batch_img_metas):
        self.calls.append(tuple(crops.shape))
        assert len(batch_img_metas) == crops.shape[0]
        local = torch.from_numpy(_local_code(crops.shape[2:]))
        return torch.stack([crops[:, 0], local.expand_as(crops[:, 0])], dim=1)


def _position_volumes(num, size):
    """(num, 1, D, H, W) integer codes, distinct for every voxel."""
    d, h, w = size
    z, y, x = np.meshgrid(
        np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    codes = [(i * 1000000 + z * 10000 + y * 100 + x) for i in range(num)]
    return torch.from_numpy(np.stack(codes)[:, None].astype(np.float32))


def _direct_blend(size, starts, crop_size, weight):
    """Blend the window-relative code over the given windows, in numpy."""
    padded = tuple(max(s, c) for s, c in zip(size, crop_size))
    dtype = np.float32 if weight is None else np.float64
    acc = np.zeros(padded, dtype)
    weight_sum = np.zeros(padded, dtype)
    w = np.ones(crop_size, dtype) if weight is None else weight
    local = _local_code(crop_size).astype(dtype)
    for z0, y0, x0 in itertools.product(*starts):
        window = (slice(z0, z0 + crop_size[0]), slice(y0, y0 + crop_size[1]),
                  slice(x0, x0 + crop_size[2]))
        acc[window] += w * local
        weight_sum[window] += w
    return (acc / weight_sum)[:size[0], :size[1], :size[2]]


def _numpy_gaussian(crop_size, sigma_scale):
    weight = np.ones(())
    for n in crop_size:
        coord = np.arange(n) - (n - 1) / 2
        weight = weight[..., None] * np.exp(-coord**2 / (2 *
                                                         (sigma_scale * n)**2))
    return weight / weight.max()


# [volume (D, H, W), crop_size, stride, window origins along D, H, W]: the
# origins are checked through the blends below, which place each window
SLIDE_CASES = [
    [(10, 11, 7), (4, 4, 7), (3, 3, 7), [[0, 3, 6], [0, 3, 6, 7], [0]]],
    [(9, 8, 10), (3, 4, 5), (3, 2, 5), [[0, 3, 6], [0, 2, 4], [0, 5]]],
    # smaller than the window along D and H: padded
    [(5, 7, 9), (8, 8, 4), (4, 8, 2), [[0], [0], [0, 2, 4, 5]]],
    [(6, 6, 6), (6, 6, 6), (1, 1, 1), [[0], [0], [0]]],
]


@pytest.mark.parametrize('size,crop_size,stride,starts', SLIDE_CASES)
@pytest.mark.parametrize('batch_windows', [1, 3])
def test_slide_constant_blend_is_exact(size, crop_size, stride, starts,
                                       batch_windows):
    model = _build(
        dict(
            mode='slide',
            crop_size=crop_size,
            stride=stride,
            batch_windows=batch_windows))
    position_model = PositionModel()
    model.encode_decode = position_model
    inputs = _position_volumes(2, size)
    logits = model.inference(inputs, [dict(ori_shape=size)] * 2)
    assert logits.shape == torch.Size((2, 2) + size)
    # every voxel is covered by windows placed where they read
    assert torch.equal(logits[:, 0], inputs[:, 0])
    # the windows are batched: all volumes of each window, batch_windows
    # windows at a time
    num_windows = int(np.prod([len(s) for s in starts]))
    assert sum(call[0] for call in position_model.calls) == 2 * num_windows
    assert max(call[0] for call in position_model.calls) == 2 * min(
        batch_windows, num_windows)
    assert all(call[2:] == crop_size for call in position_model.calls)
    # overlaps are plain means of the window-relative codes
    expected = _direct_blend(size, starts, crop_size, None)
    for n in range(2):
        assert torch.equal(logits[n, 1], torch.from_numpy(expected))


@pytest.mark.parametrize('size,crop_size,stride,starts', SLIDE_CASES)
@pytest.mark.parametrize('sigma_scale', [0.125, 0.5])
def test_slide_gaussian_blend_matches_direct(size, crop_size, stride, starts,
                                             sigma_scale):
    model = _build(
        dict(
            mode='slide',
            crop_size=crop_size,
            stride=stride,
            blend='gaussian',
            sigma_scale=sigma_scale,
            batch_windows=2))
    model.encode_decode = PositionModel()
    inputs = _position_volumes(1, size)
    logits = model.inference(inputs, [dict(ori_shape=size)])
    weight = _numpy_gaussian(crop_size, sigma_scale)
    expected = _direct_blend(size, starts, crop_size, weight)
    np.testing.assert_allclose(
        logits[0, 1].numpy(), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        logits[0, 0].numpy(), inputs[0, 0].numpy(), rtol=1e-6)
    gaussian = EncoderDecoder3D.gaussian_weight(crop_size, sigma_scale)
    assert gaussian.shape == torch.Size(crop_size)
    np.testing.assert_allclose(gaussian.numpy(), weight, rtol=1e-6)


@pytest.mark.parametrize('blend', ['constant', 'gaussian'])
def test_slide_real_network_independent_of_batch_windows(blend):
    torch.manual_seed(0)
    inputs = torch.randn(2, 1, 7, 12, 10)
    results = []
    model = _build(
        dict(mode='slide', crop_size=(4, 8, 6), stride=(3, 4, 4), blend=blend))
    for batch_windows in (1, 4, 100):
        model.test_cfg['batch_windows'] = batch_windows
        with torch.no_grad():
            results.append(model.inference(inputs, [dict()] * 2))
    assert results[0].shape == torch.Size([2, 2, 7, 12, 10])
    for result in results[1:]:
        torch.testing.assert_close(result, results[0], rtol=1e-5, atol=1e-6)


def test_slide_of_whole_volume_equals_whole_inference():
    torch.manual_seed(0)
    inputs = torch.randn(1, 1, 5, 9, 7)
    model = _build(dict(mode='slide', crop_size=(5, 9, 7), stride=(5, 9, 7)))
    with torch.no_grad():
        slide = model.inference(inputs, [dict()])
        model.test_cfg = dict(mode='whole')
        whole = model.inference(inputs, [dict()])
    torch.testing.assert_close(slide, whole)


def _data_sample(img_shape, ori_shape):
    return SegDataSample(
        metainfo=dict(img_shape=img_shape, ori_shape=ori_shape))


@pytest.mark.parametrize('test_cfg', [
    dict(mode='whole'),
    dict(
        mode='slide',
        crop_size=(4, 8, 8),
        stride=(2, 4, 4),
        batch_windows=4,
        blend='gaussian'),
])
def test_predict_returns_voxel_data_at_ori_shape(test_cfg):
    torch.manual_seed(0)
    model = _build(test_cfg)
    volumes = [torch.randn(1, 6, 10, 12), torch.randn(1, 6, 7, 9)]
    samples = [
        _data_sample((6, 10, 12), (6, 10, 12)),
        # resized in the pipeline: predictions go back to ori_shape
        _data_sample((6, 7, 9), (3, 14, 17))
    ]
    data = model.data_preprocessor(dict(inputs=volumes, data_samples=samples))
    assert data['inputs'].shape == torch.Size([2, 1, 6, 10, 12])
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for result, ori_shape in zip(results, [(6, 10, 12), (3, 14, 17)]):
        assert isinstance(result.seg_logits, VoxelData)
        assert isinstance(result.pred_sem_seg, VoxelData)
        assert result.seg_logits.data.shape == torch.Size((2, ) + ori_shape)
        assert result.pred_sem_seg.data.shape == torch.Size((1, ) + ori_shape)
        assert result.pred_sem_seg.data.dtype == torch.int64
        assert torch.equal(result.pred_sem_seg.data,
                           result.seg_logits.data.argmax(0, keepdim=True))
    # the first sample was not padded: its logits are the unpadded ones
    with torch.no_grad():
        alone = model.predict(data['inputs'][:1, :, :, :10, :12],
                              [_data_sample((6, 10, 12), (6, 10, 12))])
    if test_cfg['mode'] == 'whole':
        torch.testing.assert_close(alone[0].seg_logits.data,
                                   results[0].seg_logits.data)


def test_predict_without_data_samples_and_forward_modes():
    model = _build()
    inputs = torch.randn(2, 1, 3, 6, 5)
    with torch.no_grad():
        results = model(inputs, mode='predict')
        tensor = model(inputs, mode='tensor')
    assert len(results) == 2
    assert results[0].pred_sem_seg.shape == (3, 6, 5)
    assert tensor.shape == torch.Size([2, 2, 3, 6, 5])
    # 2D inputs are refused
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        model.predict(torch.randn(2, 1, 6, 5))
    # 2D metainfo (mmseg's PackSegInputs) is refused
    with pytest.raises(ValueError, match='PackSegVolumeInputs'):
        model.predict(inputs[:1], [_data_sample((6, 5), (6, 5))])


def test_binary_sigmoid_output():
    model = _build(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    logits = torch.linspace(-3, 3, 2 * 3 * 4).view(1, 1, 2, 3, 4)
    results = model.postprocess_result(logits,
                                       [_data_sample((2, 3, 4), (2, 3, 4))])
    probs = results[0].seg_logits.data
    assert torch.allclose(probs, logits[0].sigmoid())
    assert torch.equal(results[0].pred_sem_seg.data, (probs > 0.5).long())


def test_keep_largest_component():
    model = _build(dict(mode='whole', keep_largest_component=True))
    logits = torch.zeros(1, 3, 4, 6, 8)
    logits[0, 0] = 1
    logits[0, 1, 0:2, 0:3, 0:3] = 5  # 18 voxels of class 1
    logits[0, 2, 1:3, 2:4, 3:5] = 5  # 8 voxels of class 2, touching 1
    logits[0, 1, 3, 5, 7] = 5  # an isolated voxel
    results = model.postprocess_result(logits,
                                       [_data_sample((4, 6, 8), (4, 6, 8))])
    pred = results[0].pred_sem_seg.data[0]
    assert pred[3, 5, 7] == 0
    assert (pred == 1).sum() == 18 and (pred == 2).sum() == 8


def test_bad_test_cfg():
    # unknown mode
    with pytest.raises(ValueError, match="'whole' or 'slide'"):
        _build(dict(mode='sliding'))
    # slide without a stride
    with pytest.raises(KeyError, match='stride'):
        _build(dict(mode='slide', crop_size=(4, 4, 4)))
    # a 2D window
    with pytest.raises(ValueError, match=r'crop_size must be three'):
        _build(dict(mode='slide', crop_size=(4, 4), stride=(2, 2)))
    # a stride larger than the window skips voxels
    with pytest.raises(ValueError, match='must not exceed crop_size'):
        _build(dict(mode='slide', crop_size=(4, 4, 4), stride=(2, 5, 2)))
    # no windows per pass
    with pytest.raises(ValueError, match='batch_windows'):
        _build(dict(mode='slide', crop_size=4, stride=2, batch_windows=0))
    # unknown blending
    with pytest.raises(ValueError, match='blend'):
        _build(dict(mode='slide', crop_size=4, stride=2, blend='max'))
    # a zero-width Gaussian
    with pytest.raises(ValueError, match='sigma_scale'):
        _build(
            dict(
                mode='slide',
                crop_size=4,
                stride=2,
                blend='gaussian',
                sigma_scale=0))


def test_built_in_mmseg_scope_with_volume_preprocessor():
    model = _build(dict(mode='whole'))
    assert isinstance(model, EncoderDecoder3D)
    assert isinstance(model.data_preprocessor, SegVolumeDataPreprocessor)
    assert model.out_channels == 2 and model.num_classes == 2


def test_slide_gaussian_underflow_is_clamped():
    """A tiny sigma underflows the map's corners: clamped to the smallest
    positive weight, the blend stays finite."""
    size, crop_size, stride, starts = SLIDE_CASES[0]
    model = _build(
        dict(
            mode='slide',
            crop_size=crop_size,
            stride=stride,
            blend='gaussian',
            sigma_scale=0.01))
    model.encode_decode = PositionModel()
    inputs = _position_volumes(1, size)
    logits = model.inference(inputs, [dict(ori_shape=size)])
    weight = EncoderDecoder3D.gaussian_weight(crop_size, 0.01).double()
    assert weight.min() > 0
    expected = _direct_blend(size, starts, crop_size, weight.numpy())
    assert np.isfinite(logits.numpy()).all()
    np.testing.assert_allclose(
        logits[0, 1].numpy(), expected, rtol=1e-5, atol=1e-4)
