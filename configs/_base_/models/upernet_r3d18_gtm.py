# Pseudo-3D semantic segmentation (VDT segmentation pre-training; not in the
# paper): VDT volume (N, 1, 3, H, W) -> ResNet3D-18 in pre-train mode (no
# stride along D: every stage keeps D=3) -> 4 levels (N, C_i, 3, H/s, W/s),
# s = 4, 8, 16, 32 -> GTMNeck (grouped 1x1 convolution over the 3 slices of
# each channel + SyncBN + ReLU) -> 4 levels (N, C_i, H/s, W/s) -> mmseg's
# UPerHead (PPM on the last level, FPN fusion of all four), with mmseg's
# FCNHead auxiliary head on level 2 (loss weight 0.4).
#
# UPerHead rather than FPN + FCNHead: the GTM output is the same 4-level,
# stride 4-32 pyramid as a 2D ResNet's, which UPerHead takes as it is (its
# own FPN and PPM); FPN + FCNHead would add a second top-down path in front
# of a head that only reads one level. Head, auxiliary head, norms and
# losses are those of mmseg's 2D ResNet-18 UPerNet
# (mmseg::upernet/upernet_r18_4xb4-160k_ade20k-512x512.py), so the two
# differ only in the backbone (+ GTM) and the input.
#
# The backbone starts, as mmseg's UPerNets start from ImageNet, from the
# SVD-Net ImageNet pre-training (checkpoints/r3d18-svd-in1k_backbone.pth,
# configs/_base_/inits/svd-in1k_r3d18.py); from scratch:
#     --cfg-options model.backbone.init_cfg=None
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='PseudoVolumeEncoderDecoder',
    # One volume channel (C'=1): the mean/std of the ImageNet RGB
    # means/stds, as in the ImageNet pre-training; (H, W) label maps.
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_size_divisor=32,
        pad_value=0,
        seg_pad_val=255,
        label_dims=2),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-in1k_backbone.pth')),
    neck=dict(
        type='GTMNeck',
        in_channels=[64, 128, 256, 512],
        depths=[3, 3, 3, 3],
        mode='group_conv',
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
