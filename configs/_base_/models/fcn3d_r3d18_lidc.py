# LIDC-IDRI nodule segmentation (Table III): EncoderDecoder3D with a
# ResNet3D-18 encoder and a light FCN decoder (two conv + x2 upsample
# stages), CE 1.0 + Dice 0.3.
#
# Encoder: the official SVD-Net LIDC segmentation config (urmagicsmine/CSPR,
# medseg/configs/lidc/res18_3d_BN_fcn*.py: ResNet3DNoStemStride,
# strides=(1, 2, 1, 2)) follows ACS's LIDC FCNResNet: stem stride 1, no
# max-pool, stage strides (1, 2, 1, 2) on every axis. A 48^3 crop gives
# stage features of 48^3, 24^3, 24^3 and 12^3; FCNHead3D upsamples the last
# one x2 twice back to 48^3. (The official head also fuses the stem and
# stage-2 features; FCNHead3D uses the last feature only.)
# Intensities: uint8 voxels of the release normalised with the LIDC mean/std
# of the official LIDC segmentation transform (99.2565, 77.3798).
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder3D',
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor', mean=[99.2565], std=[77.3798]),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        stem_stride=1,
        stem_slice_stride=1,
        with_maxpool=False,
        strides=(1, 2, 1, 2),
        slice_strides=(1, 2, 1, 2),
        out_indices=(3, ),
        norm_cfg=dict(type='BN3d', requires_grad=True)),
    decode_head=dict(
        type='FCNHead3D',
        in_channels=512,
        channels=128,
        num_classes=2,
        scale_factors=((2, 2, 2), (2, 2, 2)),
        dropout_ratio=0.,
        norm_cfg=dict(type='BN3d', requires_grad=True),
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            dict(type='DiceLoss3D', loss_weight=0.3)
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
