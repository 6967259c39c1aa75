# 3D U-Net on ResNet3D-18 for LiTS liver segmentation (SVD-Net Table V).
# The encoder downsamples isotropically as in SVD-Net's LiTS model: a
# full-resolution 7x7x7 stem (stem_stride=1), a 3x3x3 max-pool with stride 2
# along D, H and W, and stride-2 stages 2-4; the U-Net decoder (UNetHead3D)
# fuses the stem feature and all four stages. For a 32x256x256 crop:
# stem 64@32x256x256, stages 64@16x128x128, 128@8x64x64, 256@4x32x32,
# 512@2x16x16. Loss: cross-entropy 1.0 + Dice 0.5.
# Weights: a row config adds one of configs/_base_/inits (backbone_init).
# svd_mm.engine: SaveVolumePredictionHook (configs/_base_/datasets/lits.py).
custom_imports = dict(
    imports=['svd_mm', 'svd_mm.engine'], allow_failed_imports=False)
norm_cfg = dict(type='BN3d', requires_grad=True)
model = dict(
    type='EncoderDecoder3D',
    # Prepared LiTS volumes are uint8 (HU window [-200, 250] -> [0, 255]);
    # normalised like the VDT ImageNet pre-training (mean/std of the RGB
    # means/stds). Padding (sliding window) is raw 0, i.e. <= -200 HU.
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_value=-114.495 / 57.63,
        seg_pad_val=255),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        base_channels=64,
        num_stages=4,
        strides=(1, 2, 2, 2),
        slice_strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        stem_stride=1,
        stem_slice_stride=1,
        with_maxpool=True,
        maxpool_slice_stride=2,
        out_indices=(0, 1, 2, 3),
        with_stem_out=True,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False),
    decode_head=dict(
        type='UNetHead3D',
        in_channels=(64, 64, 128, 256, 512),
        channels=64,
        num_classes=2,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            dict(type='DiceLoss3D', loss_weight=0.5)
        ]),
    train_cfg=dict(),
    # 3D sliding window 32x256x256, stride 12x128x128, then the largest
    # connected component of the liver. blend='gaussian' weighs window
    # centres more.
    test_cfg=dict(
        mode='slide',
        crop_size=(32, 256, 256),
        stride=(12, 128, 128),
        batch_windows=4,
        blend='constant',
        keep_largest_component=True))
