# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row: 3D
# ResNet-18 FCN initialised from ACS convolutions (the 2D kernels of an
# ImageNet-1k ResNet-18); only the init (the last _base_) differs from the
# scratch row.
# Needs checkpoints/r3d18-acs-in1k_backbone.pth, see configs/README.md.
# Paper: Table III "ACS": Dice 75.65 ± 0.22, p 0.06
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/acs-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
