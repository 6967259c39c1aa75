# Table IV (LIDC-IDRI nodule malignancy, test AUC), row: 3D ResNet-18
# trained from scratch.
# Paper: Table IV "Scratch": Accuracy 85.10 ± 1.56, AUC 92.75 ± 0.58,
#   F1 71.01 ± 1.65, Precision 59.68 ± 3.52, Sensitivity 88.13 ± 3.64,
#   Specificity 84.31 ± 2.74, p 0.00
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/scratch.py',
]
model = dict(backbone={{_base_.backbone_init}})
