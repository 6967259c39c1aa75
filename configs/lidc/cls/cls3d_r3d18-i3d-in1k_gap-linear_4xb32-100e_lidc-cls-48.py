# Table III (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from I3D (an ImageNet-1k 2D ResNet-18, inflated); only the init
# (the last _base_) differs from the scratch row.
# Paper value: see paper Table III.
# Needs checkpoints/r3d18-i3d-in1k_backbone.pth, see configs/README.md.
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/i3d-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
