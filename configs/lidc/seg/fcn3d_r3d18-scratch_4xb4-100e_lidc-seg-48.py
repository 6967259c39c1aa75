# Table III (LIDC-IDRI nodule segmentation, test Dice), row: 3D ResNet-18 FCN
# trained from scratch.
# Paper: Table III "Scratch": Dice 75.12 ± 0.23, p 0.00
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/scratch.py',
]
model = dict(backbone={{_base_.backbone_init}})
