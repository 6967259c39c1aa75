# SVD-Net Table V (LiTS liver segmentation), baseline row: 3D U-Net on
# ResNet3D-18 whose encoder starts from ACS convolutions (the 2D kernels of an
# ImageNet-1k ResNet-18), all layers fine-tuned.
# Data and schedule of the Scratch row; only the init (the last _base_)
# differs. Needs checkpoints/r3d18-acs-in1k_backbone.pth, see
# configs/README.md.
# Paper: Table V "ACS": Dice per case 95.64 ± 0.37, p 0.08
_base_ = [
    '../_base_/models/unet3d_r3d18.py',
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/acs-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
log_processor = dict(by_epoch=True)
