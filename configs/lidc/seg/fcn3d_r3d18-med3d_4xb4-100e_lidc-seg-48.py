# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row: 3D
# ResNet-18 FCN initialised from Med3D (the MedicalNet ResNet-18 pre-trained on
# 23 medical datasets); only the init (the last _base_) differs from the
# scratch row.
# Needs checkpoints/r3d18-med3d_backbone.pth, see configs/README.md.
# Paper: Table III "Med3D": Dice 75.29 ± 0.16, p 0.00
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/med3d_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
