# Table IV (LIDC-IDRI nodule malignancy, test AUC), row: 3D ResNet-18 with
# the SVD-Net ImageNet pre-training (ours).
# Needs checkpoints/r3d18-svd-in1k_backbone.pth, see configs/lidc/README.md.
# Paper: Table IV "Ours (SVD, ImageNet)": Accuracy 85.49 ± 0.98,
#   AUC 94.84 ± 0.22, F1 72.15 ± 0.79, Precision 59.92 ± 2.37,
#   Sensitivity 90.94 ± 3.34, Specificity 84.06 ± 2.05
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/svd-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
