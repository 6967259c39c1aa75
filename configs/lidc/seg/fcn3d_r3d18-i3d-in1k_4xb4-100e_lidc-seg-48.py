# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row: 3D
# ResNet-18 FCN initialised from I3D (an ImageNet-1k 2D ResNet-18, inflated);
# only the init (the last _base_) differs from the scratch row.
# Needs checkpoints/r3d18-i3d-in1k_backbone.pth, see configs/README.md.
# Paper: Table III "I3D": Dice 74.98 ± 0.38, p 0.00
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/i3d-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
