# SVD-Net Table V (LiTS liver segmentation), row "Scratch": 3D U-Net on
# ResNet3D-18 trained from random init.
# 8 GPUs x 2 crops of 32x256x256, Adam 1e-4 + poly, 500 epochs, SyncBN;
# inference: 3D sliding window 32x256x256 / stride 12x128x128 + largest
# connected component. Data: tools/dataset_converters/prepare_lits.py, see
# configs/lits/README.md.
# Paper: Table V "Scratch": Dice per case 92.59 ± 0.41, p 0.00
_base_ = [
    '../_base_/models/unet3d_r3d18.py',
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/scratch.py',
]
model = dict(backbone={{_base_.backbone_init}})
log_processor = dict(by_epoch=True)
