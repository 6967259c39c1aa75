# Init switch of the Models Genesis rows: the whole network. Models Genesis
# (Zhou et al., "Models Genesis: Generic Autodidactic Models for 3D Medical
# Image Analysis", MICCAI 2019) pre-trains a 3D U-Net (encoder AND decoder)
# by restoring distorted chest CT cubes; its rows fine-tune that U-Net
# (UNet3DGenesis, svd_mm/models/segmentors/unet3d_genesis.py), not a
# ResNet3D. So, unlike the other files of configs/_base_/inits (which define
# `backbone_init`), this one defines `model` itself, and a row lists it
# instead of a configs/_base_/models file. Segmentation rows only.
# Checkpoint (Genesis_Chest_CT.pt of MrGiovanni/ModelsGenesis; the kernels
# are permuted from its (x, y, z) arrays to svd_mm's (D, H, W)):
#     python tools/model_converters/convert_baseline.py --type genesis \
#         pretrain/Genesis_Chest_CT.pt checkpoints/unet3d-genesis_model.pth
# Input: Models Genesis reads CT clipped to [-1000, 1000] HU and scaled to
# [0, 1]; each row sets the data_preprocessor mean / std that do this from
# its stored intensities. D, H and W must be multiples of 8 (three 2x2x2
# max-pools): crops and sliding windows of multiples of 8.
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
model = dict(
    type='UNet3DGenesis',
    num_classes=2,
    # one sigmoid channel for the foreground, as Models Genesis
    out_channels=1,
    # foreground where the sigmoid exceeds 0.5 (mmseg's default: 0.3)
    threshold=0.5,
    in_channels=1,
    base_channels=32,
    norm_cfg=dict(type='BN3d', requires_grad=True),
    act_cfg=dict(type='ReLU', inplace=True),
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor', mean=[0.], std=[1.]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
    init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/unet3d-genesis_model.pth'))
