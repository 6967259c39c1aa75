# Table IV (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from Med3D (the MedicalNet ResNet-18 pre-trained on 23 medical
# datasets); only the init (the last _base_) differs from the scratch row.
# Needs checkpoints/r3d18-med3d_backbone.pth, see configs/README.md.
# Paper: Table IV "Med3D": Accuracy 83.81 ± 2.68, AUC 86.50 ± 1.06,
#   F1 65.68 ± 2.73, Precision 59.59 ± 6.65, Sensitivity 74.37 ± 5.28,
#   Specificity 86.26 ± 4.57, p 0.00
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/med3d_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
