# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row: the
# 3D U-Net of Models Genesis (encoder and decoder) initialised from
# Genesis_Chest_CT, fine-tuned whole. Data, schedule and losses (CE 1.0 +
# Dice 0.3) of the other Table III rows; the network is Models Genesis' own.
# Needs checkpoints/unet3d-genesis_model.pth, see configs/README.md.
# Paper: Table III "Models Genesis": Dice 74.67 ± 0.28, p 0.00
_base_ = [
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/genesis_unet3d.py',
]
model = dict(
    # The release stores uint8 voxels v of the HU window [-1024, 400]
    # (HU = -1024 + v * 1424 / 255). Models Genesis reads
    # (HU + 1000) / 2000 (CT clipped to [-1000, 1000] HU), i.e.
    # (v - 24 * 255 / 1424) / (2000 * 255 / 1424); the voxels below
    # -1000 HU (v < 4.3) stay slightly negative (>= -0.012), not clipped.
    data_preprocessor=dict(
        mean=[24 * 255 / 1424], std=[2000 * 255 / 1424]),
    loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        dict(type='DiceLoss3D', loss_weight=0.3)
    ],
    # the 48^3 crop is a multiple of 8: whole-volume inference
    test_cfg=dict(mode='whole'))
