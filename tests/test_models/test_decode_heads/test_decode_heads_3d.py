import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

from svd_mm.models.decode_heads import (BaseDecodeHead3D, FCNHead3D,
                                        UNetHead3D)
from svd_mm.structures import VoxelData


def _samples(label_shape, num_classes, n=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        SegDataSample(
            gt_sem_seg=VoxelData(
                data=torch.randint(
                    0, num_classes, (1, ) + label_shape, generator=generator)))
        for _ in range(n)
    ]


# [kwargs, feature shapes (N, C, D, H, W), output shape]
FCN_CASES = [
    [dict(in_channels=16), [(2, 16, 2, 3, 4)], (2, 3, 8, 12, 16)],
    [
        dict(in_channels=16, scale_factors=((1, 2, 2), (1, 2, 2))),
        [(2, 16, 3, 5, 4)], (2, 3, 3, 20, 16)
    ],
    [
        dict(in_channels=16, scale_factors=(2, 1, 1)), [(1, 16, 2, 3, 4)],
        (1, 3, 4, 6, 8)
    ],
    [
        dict(
            in_channels=[8, 16],
            in_index=[0, 1],
            input_transform='resize_concat'),
        [(1, 8, 4, 6, 8), (1, 16, 2, 3, 4)], (1, 3, 16, 24, 32)
    ],
]


@pytest.mark.parametrize('kwargs,feat_shapes,out_shape', FCN_CASES)
def test_fcn_head_3d_shapes(kwargs, feat_shapes, out_shape):
    head = FCNHead3D(channels=8, num_classes=3, **kwargs)
    feats = tuple(torch.rand(s) for s in feat_shapes)
    assert head(feats).shape == torch.Size(out_shape)
    assert isinstance(head.conv_seg, nn.Conv3d)
    assert head.conv_seg.kernel_size == (1, 1, 1)
    assert isinstance(head.dropout, nn.Dropout3d)
    assert isinstance(head.convs[0].bn, nn.BatchNorm3d)


# [in_channels, feature shapes (D, H, W), output shape]: ResNet3D with
# with_stem_out=True and various strides
UNET_CASES = [
    [(4, 4, 8, 16, 32),
     [(8, 16, 24), (8, 16, 24), (8, 8, 12), (4, 4, 6), (2, 2, 3)],
     (2, 3, 8, 16, 24)],
    # no D stride, odd sizes
    [(4, 8, 16), [(3, 11, 9), (3, 6, 5), (3, 3, 3)], (2, 3, 3, 11, 9)],
    [(6, 4), [(5, 7, 9), (5, 7, 9)], (2, 3, 5, 7, 9)],
]


@pytest.mark.parametrize('in_channels,feat_shapes,out_shape', UNET_CASES)
def test_unet_head_3d_shapes(in_channels, feat_shapes, out_shape):
    head = UNetHead3D(in_channels=in_channels, channels=4, num_classes=3)
    feats = tuple(
        torch.rand((2, c) + s) for c, s in zip(in_channels, feat_shapes))
    assert head(feats).shape == torch.Size(out_shape)
    assert head.input_transform == 'multiple_select'
    assert head.in_index == tuple(range(len(in_channels)))
    assert len(head.decoder_blocks) == len(in_channels) - 1
    assert all(len(block) == 2 for block in head.decoder_blocks)
    # the default decoder widths follow the skips
    assert head.dec_channels == (4, ) + tuple(in_channels[1:-1])


def test_unet_head_custom_widths_and_index():
    head = UNetHead3D(
        in_channels=(4, 8, 16),
        channels=6,
        dec_channels=(6, 12),
        num_convs=1,
        in_index=(1, 2, 3),
        num_classes=2)
    feats = (torch.rand(1, 99, 1, 1, 1), torch.rand(1, 4, 4, 8, 8),
             torch.rand(1, 8, 2, 4, 4), torch.rand(1, 16, 1, 2, 2))
    assert head(feats).shape == torch.Size([1, 2, 4, 8, 8])
    assert head.decoder_blocks[1][0].conv.in_channels == 16 + 8
    assert head.decoder_blocks[0][0].conv.in_channels == 12 + 4


def test_loss_by_feat_resizes_trilinearly_and_sums_losses():
    head = FCNHead3D(
        in_channels=16,
        channels=8,
        num_classes=3,
        scale_factors=(2, ),
        dropout_ratio=0,  # the same logits in both forwards
        loss_decode=[
            dict(type='CrossEntropyLoss', loss_weight=1.0),
            dict(type='DiceLoss3D', loss_weight=0.3),
            dict(type='DiceLoss3D', loss_weight=0.2)
        ])
    feats = (torch.rand(2, 16, 2, 3, 4), )
    samples = _samples((8, 12, 16), 3)
    losses = head.loss(feats, samples, train_cfg=None)
    assert set(losses) == {'loss_ce', 'loss_dice', 'acc_seg'}
    # the summed Dice losses are 0.5 * one Dice loss on the resized logits
    logits = torch.nn.functional.interpolate(
        head(feats), size=(8, 12, 16), mode='trilinear', align_corners=False)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    expected = 0.5 * head.loss_decode[1](logits, labels) / 0.3
    assert torch.allclose(losses['loss_dice'], expected)
    losses['loss_ce'].backward()
    assert head.conv_seg.weight.grad is not None


def test_binary_sigmoid_head():
    head = UNetHead3D(
        in_channels=(4, 8),
        channels=4,
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=True),
            dict(type='DiceLoss3D')
        ])
    feats = (torch.rand(2, 4, 4, 6, 8), torch.rand(2, 8, 2, 3, 4))
    losses = head.loss(feats, _samples((4, 6, 8), 2), train_cfg=None)
    assert torch.isfinite(losses['loss_ce']) and torch.isfinite(
        losses['loss_dice'])
    assert head.conv_seg.out_channels == 1


def test_predict_by_feat_uses_batch_input_shape():
    head = FCNHead3D(in_channels=16, channels=8, num_classes=2)
    feats = (torch.rand(1, 16, 2, 3, 4), )
    out = head.predict(feats, [dict(batch_input_shape=(5, 13, 17))], None)
    assert out.shape == torch.Size([1, 2, 5, 13, 17])
    # a 2D shape of mmseg's 2D pipelines is refused
    with pytest.raises(KeyError, match='batch_input_shape'):
        head.predict(feats, [dict(batch_input_shape=(13, 17))], None)


def test_bad_arguments():
    # FCNHead3D without stages
    with pytest.raises(ValueError, match='at least one stage'):
        FCNHead3D(scale_factors=(), in_channels=4, channels=4, num_classes=2)
    # a scale factor with two axes
    with pytest.raises(ValueError, match=r'\(D, H, W\)'):
        FCNHead3D(
            scale_factors=((2, 2), ), in_channels=4, channels=4, num_classes=2)
    # a bilinear upsampling
    with pytest.raises(ValueError, match='upsample_mode'):
        FCNHead3D(
            upsample_mode='bilinear', in_channels=4, channels=4, num_classes=2)
    # FCNHead3D on a list of features
    with pytest.raises(ValueError, match='multiple_select'):
        FCNHead3D(
            in_channels=[4, 4],
            in_index=[0, 1],
            input_transform='multiple_select',
            channels=4,
            num_classes=2)
    # UNetHead3D with one feature
    with pytest.raises(ValueError, match='at least two input features'):
        UNetHead3D(in_channels=4, channels=4, num_classes=2)
    # UNetHead3D with resize_concat
    with pytest.raises(ValueError, match='multiple_select'):
        UNetHead3D(
            in_channels=(4, 8),
            channels=4,
            num_classes=2,
            input_transform='resize_concat')
    # wrong number of decoder widths
    with pytest.raises(ValueError, match='needs 2 values'):
        UNetHead3D(
            in_channels=(4, 8, 16),
            channels=4,
            dec_channels=(4, ),
            num_classes=2)
    # finest decoder width other than channels
    with pytest.raises(ValueError, match='must equal channels=4'):
        UNetHead3D(
            in_channels=(4, 8, 16),
            channels=4,
            dec_channels=(8, 8),
            num_classes=2)
    # a UNet level without convolutions
    with pytest.raises(ValueError, match='num_convs'):
        UNetHead3D(in_channels=(4, 8), channels=4, num_convs=0, num_classes=2)
    head = UNetHead3D(in_channels=(4, 8), channels=4, num_classes=2)
    # 4-D (2D) features
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        head((torch.rand(1, 4, 6, 8), torch.rand(1, 8, 3, 4)))
    # features of other widths than in_channels
    with pytest.raises(ValueError, match=r'in_channels\[1\] = 8'):
        head((torch.rand(1, 4, 2, 6, 8), torch.rand(1, 6, 1, 3, 4)))


@pytest.mark.parametrize('cfg', [
    dict(type='FCNHead3D', in_channels=8, channels=4, num_classes=2),
    dict(type='UNetHead3D', in_channels=[4, 8], channels=4, num_classes=3),
])
def test_built_in_mmseg_scope(cfg):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(cfg)
    assert isinstance(head, BaseDecodeHead3D)
    assert type(head).__name__ == cfg['type']
