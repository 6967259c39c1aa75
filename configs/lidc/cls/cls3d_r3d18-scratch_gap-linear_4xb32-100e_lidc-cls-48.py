# Table III (LIDC-IDRI nodule malignancy, test AUC), row: 3D ResNet-18
# trained from scratch. Paper value: see paper Table III.
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/scratch.py',
]
model = dict(backbone={{_base_.backbone_init}})
