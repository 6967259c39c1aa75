# SVD-Net Table V (LiTS liver segmentation), row "Ours": 3D U-Net on
# ResNet3D-18 whose encoder starts from SVD-Net's supervised ImageNet
# pre-training (VDT), all layers fine-tuned.
# Data and schedule of the Scratch row; only the init (the last _base_)
# differs. Needs checkpoints/r3d18-svd-in1k_backbone.pth, see
# configs/lits/README.md.
# Paper: Table V "Ours (SVD, ImageNet)": Dice per case 96.07 ± 0.23
_base_ = [
    '../_base_/models/unet3d_r3d18.py',
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/svd-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
log_processor = dict(by_epoch=True)
