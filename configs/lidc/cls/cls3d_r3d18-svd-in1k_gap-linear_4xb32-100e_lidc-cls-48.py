# Table III (LIDC-IDRI nodule malignancy, test AUC), row: 3D ResNet-18 with
# the SVD-Net ImageNet pre-training (ours). Paper value: see paper Table III.
# Needs checkpoints/r3d18-svd-in1k_backbone.pth, see configs/lidc/README.md.
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/svd-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
