# Table III (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from ACS convolutions (the 2D kernels of an ImageNet-1k
# ResNet-18); only the init (the last _base_) differs from the scratch row.
# Paper value: see paper Table III.
# Needs checkpoints/r3d18-acs-in1k_backbone.pth, see configs/README.md.
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/acs-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
