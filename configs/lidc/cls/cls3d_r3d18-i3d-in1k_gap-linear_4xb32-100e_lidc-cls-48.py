# Table IV (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from I3D (an ImageNet-1k 2D ResNet-18, inflated); only the init
# (the last _base_) differs from the scratch row.
# Needs checkpoints/r3d18-i3d-in1k_backbone.pth, see configs/README.md.
# Paper: Table IV "I3D": Accuracy 84.77 ± 1.33, AUC 93.23 ± 0.55,
#   F1 70.25 ± 1.24, Precision 59.16 ± 3.04, Sensitivity 86.87 ± 3.51,
#   Specificity 84.23 ± 2.47, p 0.00
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/i3d-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
