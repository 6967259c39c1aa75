# Table IV (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from ACS convolutions (the 2D kernels of an ImageNet-1k
# ResNet-18); only the init (the last _base_) differs from the scratch row.
# Needs checkpoints/r3d18-acs-in1k_backbone.pth, see configs/README.md.
# Paper: Table IV "ACS": Accuracy 83.93 ± 2.07, AUC 93.54 ± 0.37,
#   F1 70.30 ± 1.91, Precision 57.31 ± 3.90, Sensitivity 91.56 ± 4.03,
#   Specificity 81.95 ± 3.61, p 0.00
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/acs-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
