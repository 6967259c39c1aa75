# SVD-Net Table V (LiTS liver segmentation), baseline row: 3D U-Net on
# ResNet3D-18 whose encoder starts from Med3D (the MedicalNet ResNet-18 pre-
# trained on 23 medical datasets), all layers fine-tuned.
# Data and schedule of the Scratch row; only the init (the last _base_)
# differs. Needs checkpoints/r3d18-med3d_backbone.pth, see configs/README.md.
# Paper: Table V "Med3D": Dice per case 93.71 ± 0.54, p 0.00
_base_ = [
    '../_base_/models/unet3d_r3d18.py',
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/med3d_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
log_processor = dict(by_epoch=True)
