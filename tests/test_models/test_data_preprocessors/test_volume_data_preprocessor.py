import copy
import math

import pytest
import torch
import torch.nn as nn
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import BaseModule
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import set_random_seed
from mmengine.structures import BaseDataElement

from svd_mm.models.data_preprocessors import VolumeDataPreprocessor
from tests.helpers.data_cache import fetch_foolbox_images


@MODELS.register_module(name='_TestTinyVolumeNet', force=True)
class _TinyVolumeNet(BaseModule):
    """A one-conv 3D backbone; (N, 1, D, H, W) -> ((N, 4, D, H/2, W/2), )."""

    def __init__(self, in_channels=1, out_channels=4):
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels, out_channels, 3, stride=(1, 2, 2), padding=1)

    def forward(self, x):
        assert x.dim() == 5, x.shape
        return (torch.relu(self.conv(x)), )


@pytest.fixture(scope='module')
def foolbox_items():
    return fetch_foolbox_images()


def _volumes(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        for shape in shapes
    ]


# [volume shapes (C, D, H, W), pad_size_divisor, batch (N, C, D, H, W)]
PAD_CASES = [
    [[(1, 3, 32, 48)], 1, (1, 1, 3, 32, 48)],
    [[(1, 3, 30, 45), (1, 3, 20, 50)], 1, (2, 1, 3, 30, 50)],
    [[(1, 3, 30, 45), (1, 3, 20, 50)], 16, (2, 1, 3, 32, 64)],
    [[(2, 5, 17, 9), (2, 5, 8, 23), (2, 5, 33, 4)], 8, (3, 2, 5, 40, 24)],
    [[(1, 7, 64, 32), (1, 7, 64, 32)], 32, (2, 1, 7, 64, 32)],
]


@pytest.mark.parametrize('shapes,divisor,batch_shape', PAD_CASES)
def test_volume_data_preprocessor_pad_and_normalise(shapes, divisor,
                                                    batch_shape):
    channels = shapes[0][0]
    mean = [100., 20.][:channels]
    std = [50., 4.][:channels]
    preprocessor = VolumeDataPreprocessor(
        mean=mean, std=std, pad_size_divisor=divisor, pad_value=-7)
    volumes = _volumes(shapes)
    out = preprocessor(
        dict(
            inputs=[v.clone() for v in volumes],
            data_samples=[BaseDataElement() for _ in shapes]))
    inputs, data_samples = out['inputs'], out['data_samples']
    assert inputs.shape == torch.Size(batch_shape)
    assert inputs.dtype == torch.float32
    assert len(data_samples) == len(shapes)
    batch_hw = batch_shape[3:]
    for i, volume in enumerate(volumes):
        c, d, h, w = volume.shape
        expected = volume.double()
        for k in range(c):
            expected[k] = (expected[k] - mean[k]) / std[k]
        torch.testing.assert_close(
            inputs[i, :, :, :h, :w].double(), expected, rtol=0, atol=1e-5)
        # Only H and W are padded, bottom/right, with pad_value.
        assert (inputs[i, :, :, h:] == -7).all()
        assert (inputs[i, :, :, :, w:] == -7).all()
        assert data_samples[i].batch_input_shape == batch_hw
        assert data_samples[i].pad_shape == (math.ceil(h / divisor) * divisor,
                                             math.ceil(w / divisor) * divisor)


def test_volume_data_preprocessor_without_normalisation():
    preprocessor = VolumeDataPreprocessor(pad_size_divisor=4)
    volumes = _volumes([(1, 3, 5, 6), (1, 3, 7, 3)])
    out = preprocessor(dict(inputs=volumes))
    assert out['data_samples'] is None
    assert out['inputs'].shape == torch.Size([2, 1, 3, 8, 8])
    assert torch.equal(out['inputs'][0, :, :, :5, :6], volumes[0].float())
    assert torch.equal(out['inputs'][1, :, :, :7, :3], volumes[1].float())
    assert out['inputs'][0, :, :, 5:].abs().sum() == 0


def test_volume_data_preprocessor_stacked_tensor():
    preprocessor = VolumeDataPreprocessor(
        mean=[10.], std=[2.], pad_size_divisor=16, pad_value=1.5)
    batch = torch.randint(0, 256, (2, 1, 3, 20, 33), dtype=torch.uint8)
    out = preprocessor(
        dict(
            inputs=batch, data_samples=[BaseDataElement(),
                                        BaseDataElement()]))
    assert out['inputs'].shape == torch.Size([2, 1, 3, 32, 48])
    torch.testing.assert_close(out['inputs'][:, :, :, :20, :33],
                               (batch.float() - 10.) / 2.)
    assert (out['inputs'][:, :, :, 20:] == 1.5).all()
    assert (out['inputs'][:, :, :, :, 33:] == 1.5).all()
    for data_sample in out['data_samples']:
        assert data_sample.batch_input_shape == (32, 48)
        assert data_sample.pad_shape == (32, 48)


def test_volume_data_preprocessor_device():
    preprocessor = VolumeDataPreprocessor(mean=[0.], std=[1.])
    out = preprocessor(dict(inputs=_volumes([(1, 3, 4, 4)])))
    assert out['inputs'].device == preprocessor.device == torch.device('cpu')
    assert preprocessor.mean.shape == torch.Size([1, 1, 1, 1])
    # mean/std are non-persistent buffers: they follow .to() but stay out of
    # checkpoints.
    assert preprocessor.state_dict() == {}


def test_volume_data_preprocessor_bad_args():
    # mean without std
    with pytest.raises(ValueError, match='both'):
        VolumeDataPreprocessor(mean=[0.])
    # std without mean
    with pytest.raises(ValueError, match='both'):
        VolumeDataPreprocessor(std=[1.])
    # mean and std of different lengths
    with pytest.raises(ValueError, match='one value per volume channel'):
        VolumeDataPreprocessor(mean=[0., 1.], std=[1.])
    # a zero std
    with pytest.raises(ValueError, match='std must not contain 0'):
        VolumeDataPreprocessor(mean=[0.], std=[0.])
    # pad_size_divisor of 0
    with pytest.raises(ValueError, match='pad_size_divisor'):
        VolumeDataPreprocessor(pad_size_divisor=0)
    # batch augmentations (mmpretrain's train_cfg augments)
    with pytest.raises(ValueError, match='batch augmentations'):
        VolumeDataPreprocessor(
            batch_augments=dict(augments=dict(type='Mixup', alpha=0.8)))


def test_volume_data_preprocessor_bad_inputs():
    preprocessor = VolumeDataPreprocessor(mean=[0.], std=[1.])
    # a (C, H, W) image among the volumes: message names index and shape
    with pytest.raises(ValueError, match=r'input 1 has shape \(3, 8, 8\)'):
        preprocessor(
            dict(inputs=_volumes([(1, 3, 8, 8)]) + _volumes([(3, 8, 8)])))
    # a volume with 3 channels for a one-channel mean/std
    with pytest.raises(ValueError, match=r'3 channels.*1 values'):
        preprocessor(dict(inputs=_volumes([(3, 1, 8, 8)])))
    # volumes of different depth D
    with pytest.raises(ValueError, match=r'\(1, 3, 8, 8\), \(1, 4, 8, 8\)'):
        preprocessor(dict(inputs=_volumes([(1, 3, 8, 8), (1, 4, 8, 8)])))
    # a stacked (N, C, H, W) tensor
    with pytest.raises(ValueError, match=r'\(2, 1, 8, 8\)'):
        preprocessor(dict(inputs=torch.zeros(2, 1, 8, 8)))
    # an empty batch
    with pytest.raises(TypeError, match='non-empty'):
        preprocessor(dict(inputs=[]))
    # more data samples than inputs
    with pytest.raises(ValueError, match='1 inputs but 2 data samples'):
        preprocessor(
            dict(
                inputs=_volumes([(1, 3, 8, 8)]),
                data_samples=[BaseDataElement(),
                              BaseDataElement()]))


def test_volume_data_preprocessor_registries():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    for registry in (MODELS, MMDET_MODELS, MMPRETRAIN_MODELS, MMSEG_MODELS):
        preprocessor = registry.build(
            dict(type='VolumeDataPreprocessor', mean=[1.], std=[2.]))
        assert isinstance(preprocessor, VolumeDataPreprocessor)


def _det_batch(tmp_path, foolbox_items):
    """Two real photos of different size through an mmdet volume pipeline."""
    import mmcv
    from mmdet.registry import TRANSFORMS
    pipeline = Compose([
        TRANSFORMS.build(cfg) for cfg in [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(160, 96), keep_ratio=True),
            dict(type='RandomFlip', prob=0.),
            dict(type='RGBToVolume'),
            dict(type='PackDetVolumeInputs'),
        ]
    ])
    items = [i for i in foolbox_items if i['split'] == 'imagenet']
    samples = []
    for k, (item, crop) in enumerate(zip(items, [(300, 420), (480, 200)])):
        path = str(tmp_path / f'photo{k}.png')
        mmcv.imwrite(mmcv.imread(item['path'])[:crop[0], :crop[1]], path)
        samples.append(
            pipeline(
                dict(
                    img_id=k,
                    img_path=path,
                    instances=[
                        dict(
                            bbox=[10., 20., 150., 190.],
                            bbox_label=1,
                            ignore_flag=0)
                    ])))
    return pseudo_collate(samples)


def test_volume_data_preprocessor_det_data_samples(tmp_path, foolbox_items):
    from mmdet.structures import DetDataSample
    data = _det_batch(tmp_path, foolbox_items)
    # keep_ratio Resize, long/short edge at most 160/96: a 300x420 crop
    # becomes 96x134 and a 480x200 crop 160x67.
    assert [tuple(v.shape) for v in data['inputs']] == [(1, 3, 96, 134),
                                                        (1, 3, 160, 67)]
    raw = [v.clone() for v in data['inputs']]
    preprocessor = VolumeDataPreprocessor(
        mean=[123.675], std=[58.395], pad_size_divisor=32)
    out = preprocessor(data, True)
    inputs, data_samples = out['inputs'], out['data_samples']
    assert inputs.shape == torch.Size([2, 1, 3, 160, 160])
    assert all(isinstance(s, DetDataSample) for s in data_samples)
    assert data_samples[0].batch_input_shape == (160, 160)
    assert data_samples[1].batch_input_shape == (160, 160)
    assert data_samples[0].pad_shape == (96, 160)
    assert data_samples[1].pad_shape == (160, 96)
    assert data_samples[0].img_shape == (96, 134)
    assert data_samples[1].img_shape == (160, 67)
    for i, (h, w) in enumerate([(96, 134), (160, 67)]):
        torch.testing.assert_close(inputs[i, :, :, :h, :w],
                                   (raw[i].float() - 123.675) / 58.395)
        assert (inputs[i, :, :, h:] == 0).all()
        assert (inputs[i, :, :, :, w:] == 0).all()
    # mmdet box objects became tensors, as DetDataPreprocessor does.
    bboxes = data_samples[0].gt_instances.bboxes
    assert type(bboxes) is torch.Tensor
    assert bboxes.shape == torch.Size([1, 4])


def test_volume_data_preprocessor_keeps_box_objects(tmp_path, foolbox_items):
    from mmdet.structures.bbox import HorizontalBoxes
    data = _det_batch(tmp_path, foolbox_items)
    out = VolumeDataPreprocessor(boxtype2tensor=False)(data)
    assert isinstance(out['data_samples'][0].gt_instances.bboxes,
                      HorizontalBoxes)


def _build_classifier(pad_size_divisor=1):
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='_TestTinyVolumeNet'),
                neck=dict(type='GlobalAveragePooling', dim=3),
                head=dict(
                    type='LinearClsHead',
                    num_classes=1000,
                    in_channels=4,
                    loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
                data_preprocessor=dict(
                    type='VolumeDataPreprocessor',
                    mean=[127.5],
                    std=[127.5],
                    pad_size_divisor=pad_size_divisor)))


def _cls_batch(foolbox_items, scales=((40, 56), (28, 36))):
    """Real ImageNet photos packed by an mmpretrain VDT pipeline."""
    from mmpretrain.registry import TRANSFORMS
    items = [i for i in foolbox_items if i['split'] == 'imagenet']
    samples = []
    set_random_seed(0)
    for item, scale in zip(items, scales):
        pipeline = Compose([
            TRANSFORMS.build(cfg) for cfg in [
                dict(type='LoadImageFromFile'),
                dict(type='RandomResizedCrop', scale=scale),
                dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='RGBToVolume'),
                dict(type='PackInputs'),
            ]
        ])
        samples.append(
            pipeline(dict(img_path=item['path'], gt_label=item['label'])))
    return pseudo_collate(samples)


def test_volume_data_preprocessor_in_image_classifier(foolbox_items):
    from mmpretrain.models import ImageClassifier
    from mmpretrain.structures import DataSample
    model = _build_classifier(pad_size_divisor=16)
    assert isinstance(model, ImageClassifier)
    assert isinstance(model.data_preprocessor, VolumeDataPreprocessor)

    data = _cls_batch(foolbox_items)
    raw = [v.clone() for v in data['inputs']]
    assert [tuple(v.shape) for v in raw] == [(1, 3, 40, 56), (1, 3, 28, 36)]
    # Force known extreme pixels: uint8 255 -> 1.0 and 0 -> -1.0 exactly.
    data['inputs'][0][0, 0, 0, 0] = 255
    data['inputs'][1][0, 2, 5, 7] = 0
    d = model.data_preprocessor(copy.deepcopy(data), True)
    inputs, data_samples = d['inputs'], d['data_samples']
    assert inputs.shape == torch.Size([2, 1, 3, 48, 64])
    assert inputs[0, 0, 0, 0, 0].item() == 1.0
    assert inputs[1, 0, 2, 5, 7].item() == -1.0
    for i, (h, w) in enumerate([(40, 56), (28, 36)]):
        expected = (data['inputs'][i].float() - 127.5) / 127.5
        torch.testing.assert_close(
            inputs[i, :, :, :h, :w], expected, rtol=0, atol=0)
        assert (inputs[i, :, :, h:] == 0).all()
        assert (inputs[i, :, :, :, w:] == 0).all()
    assert all(isinstance(s, DataSample) for s in data_samples)
    assert data_samples[0].batch_input_shape == (48, 64)
    assert data_samples[0].pad_shape == (48, 64)
    assert data_samples[1].pad_shape == (32, 48)
    assert [s.gt_label.item() for s in data_samples] == [
        i['label'] for i in foolbox_items if i['split'] == 'imagenet'
    ][:2]

    # The classifier consumes the (N, 1, 3, H, W) batch.
    losses = model(**d, mode='loss')
    assert set(losses) == {'loss'}
    assert losses['loss'].dim() == 0 and torch.isfinite(losses['loss'])
    predictions = model(
        **model.data_preprocessor(copy.deepcopy(data)), mode='predict')
    assert len(predictions) == 2
    assert predictions[0].pred_score.shape == torch.Size([1000])


def test_volume_data_preprocessor_train_step(foolbox_items):
    set_random_seed(1)
    model = _build_classifier()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    # Same size crops, so no padding is needed.
    data = _cls_batch(foolbox_items, scales=((32, 48), (32, 48)))
    weight = model.backbone.conv.weight.detach().clone()
    log_vars = model.train_step(copy.deepcopy(data), optim_wrapper)
    assert set(log_vars) == {'loss'}
    assert not torch.equal(weight, model.backbone.conv.weight)
    outputs = model.val_step(copy.deepcopy(data))
    assert [o.pred_score.shape for o in outputs] == [torch.Size([1000])] * 2
