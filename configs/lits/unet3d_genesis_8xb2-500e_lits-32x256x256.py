# SVD-Net Table V (LiTS liver segmentation), baseline row: the 3D U-Net of
# Models Genesis (encoder and decoder) initialised from Genesis_Chest_CT,
# fine-tuned whole. Data, schedule, losses (CE 1.0 + Dice 0.5) and
# inference (32x256x256 sliding window, stride 12x128x128, largest
# connected component) of the other Table V rows; the network is Models
# Genesis' own (crops and windows are multiples of 8).
# Needs checkpoints/unet3d-genesis_model.pth, see configs/README.md.
# Paper: Table V "Models Genesis": Dice per case 95.68 ± 0.14, p 0.02
_base_ = [
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/genesis_unet3d.py',
]
# svd_mm.engine: SaveVolumePredictionHook (configs/_base_/datasets/lits.py)
custom_imports = dict(
    imports=['svd_mm', 'svd_mm.engine'], allow_failed_imports=False)
model = dict(
    # Prepared LiTS volumes are uint8 v of the HU window [-200, 250]
    # (HU = -200 + v * 450 / 255). Models Genesis reads (HU + 1000) / 2000
    # (CT clipped to [-1000, 1000] HU), i.e.
    # (v + 800 * 255 / 450) / (2000 * 255 / 450), in [0.4, 0.625]: the
    # prepared window keeps no HU outside [-200, 250]. Padding (sliding
    # window) is raw 0, i.e. <= -200 HU, as in the other rows.
    data_preprocessor=dict(
        mean=[-800 * 255 / 450],
        std=[2000 * 255 / 450],
        pad_value=800 / 2000,
        seg_pad_val=255),
    loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        dict(type='DiceLoss3D', loss_weight=0.5)
    ],
    test_cfg=dict(
        _delete_=True,
        mode='slide',
        crop_size=(32, 256, 256),
        stride=(12, 128, 128),
        batch_windows=4,
        blend='constant',
        keep_largest_component=True))
log_processor = dict(by_epoch=True)
