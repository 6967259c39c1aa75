# SVD-Net Table V (LiTS liver segmentation), row "Scratch": 3D U-Net on
# ResNet3D-18 trained from random init.
# Paper numbers: see paper Table V (Dice per case / Dice global on the 13
# test volumes of the 105/13/13 split).
# 8 GPUs x 2 crops of 32x256x256, Adam 1e-4 + poly, 500 epochs, SyncBN;
# inference: 3D sliding window 32x256x256 / stride 12x128x128 + largest
# connected component. Data: tools/dataset_converters/prepare_lits.py, see
# configs/lits/README.md.
_base_ = [
    '../_base_/models/unet3d_r3d18.py',
    '../_base_/datasets/lits.py',
    '../_base_/schedules/adam-poly_lits.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/inits/scratch.py',
]
model = dict(backbone={{_base_.backbone_init}})
log_processor = dict(by_epoch=True)
