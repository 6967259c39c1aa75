# Table IV (LIDC-IDRI nodule malignancy, test AUC), baseline row "ACS
# scratch": 3D ResNet-18 built from ACS convolutions, trained from a random
# init; only the init (the last _base_) differs from the scratch row.
# Paper: Table IV "ACS scratch": Accuracy 85.10 ± 1.79, AUC 92.82 ± 0.40,
#   F1 70.98 ± 1.78, Precision 59.84 ± 4.12, Sensitivity 87.81 ± 3.48,
#   Specificity 84.39 ± 3.12, p 0.00
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/acs-scratch_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
