import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import svd_mm  # noqa: F401  (registers the svd_mm modules)

CHANNELS = [4, 8, 16, 32]


def build(test_cfg=None, num_classes=3):
    cfg = dict(
        type='PseudoVolumeEncoderDecoder',
        data_preprocessor=dict(
            type='SegVolumeDataPreprocessor',
            mean=[114.495],
            std=[57.63],
            pad_size_divisor=32,
            label_dims=2),
        backbone=dict(
            type='ResNet3D',
            depth=18,
            base_channels=4,
            out_indices=(0, 1, 2, 3)),
        neck=dict(
            type='GTMNeck',
            in_channels=CHANNELS,
            depths=[3, 3, 3, 3],
            norm_cfg=dict(type='BN')),
        decode_head=dict(
            type='UPerHead',
            in_channels=CHANNELS,
            in_index=[0, 1, 2, 3],
            channels=8,
            num_classes=num_classes,
            norm_cfg=dict(type='BN')),
        auxiliary_head=dict(
            type='FCNHead',
            in_channels=16,
            in_index=2,
            channels=8,
            num_convs=1,
            concat_input=False,
            num_classes=num_classes,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False,
                loss_weight=0.4)),
        test_cfg=test_cfg or dict(mode='whole'))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(shapes, num_classes=3):
    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(
            torch.randint(
                0, 256, (1, 3, h, w), generator=generator,
                dtype=torch.uint8))
        gt = torch.randint(0, num_classes, (1, h, w), generator=generator)
        samples.append(
            SegDataSample(
                gt_sem_seg=PixelData(data=gt),
                metainfo=dict(img_shape=(h, w), ori_shape=(h, w))))
    return dict(inputs=inputs, data_samples=samples)


def test_train_step_gives_mmseg_losses():
    model = build().train()
    data = model.data_preprocessor(batch([(64, 80), (50, 96)]), True)
    assert data['inputs'].shape == (2, 1, 3, 64, 96)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'
    }
    loss = losses['decode.loss_ce'] + losses['aux.loss_ce']
    assert torch.isfinite(loss)
    loss.backward()
    # the gradient reaches the 3D backbone through the GTM
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0


def test_predict_cuts_padding_and_resizes_to_ori_shape():
    model = build().eval()
    data = batch([(50, 70)])
    data['data_samples'][0].set_metainfo(dict(ori_shape=(100, 140)))
    data = model.data_preprocessor(data, False)
    assert data['inputs'].shape == (1, 1, 3, 64, 96)
    with torch.no_grad():
        (result, ) = model(**data, mode='predict')
        padded = model.encode_decode(data['inputs'],
                                     [data['data_samples'][0].metainfo])
    assert result.seg_logits.shape == (100, 140)
    assert result.pred_sem_seg.shape == (100, 140)
    # the logits of the (50, 70) image area, bilinearly resized
    expected = torch.nn.functional.interpolate(
        padded[:, :, :50, :70], size=(100, 140), mode='bilinear')
    assert torch.allclose(result.seg_logits.data, expected[0], atol=1e-5)


def test_slide_inference_averages_windows_of_the_volume():
    model = build(dict(mode='slide', crop_size=(64, 64), stride=(32, 32)))
    model.eval()
    inputs = torch.rand(2, 1, 3, 64, 96)
    metas = [dict(img_shape=(64, 96), ori_shape=(64, 96))] * 2
    with torch.no_grad():
        logits = model.slide_inference(inputs, [dict(m) for m in metas])
        # windows at x = 0 and 32: overlap 32..64 is their mean (mmseg
        # marks a window's size as a torch.Size img_shape)
        window = [dict(img_shape=torch.Size([64, 64]))] * 2
        left = model.encode_decode(inputs[..., 0:64], window)
        right = model.encode_decode(inputs[..., 32:96], window)
    assert logits.shape == (2, 3, 64, 96)
    assert torch.allclose(logits[..., :32], left[..., :32], atol=1e-5)
    assert torch.allclose(logits[..., 64:], right[..., 32:], atol=1e-5)
    assert torch.allclose(
        logits[..., 32:64], (left[..., 32:] + right[..., :32]) / 2,
        atol=1e-5)
    # the fold of D into C is undone after the windows
    assert model._folded is None


def test_predict_without_samples_uses_h_w():
    model = build(dict(mode='slide', crop_size=(64, 64), stride=(48, 48)))
    model.eval()
    with torch.no_grad():
        results = model.predict(torch.rand(1, 1, 3, 80, 96))
    assert results[0].pred_sem_seg.shape == (80, 96)


def test_rejects_images():
    model = build().eval()
    # a 2D image batch: the VDT is missing from the pipeline
    with pytest.raises(ValueError, match=r'got shape \(1, 3, 64, 64\)'):
        model.predict(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\) volumes'):
        model.extract_feat(torch.rand(1, 3, 64, 64))
