# Table III (LIDC-IDRI nodule malignancy, test AUC), baseline row: 3D ResNet-18
# initialised from Kinetics (the 3D-ResNets-PyTorch ResNet-18 pre-trained on
# videos); only the init (the last _base_) differs from the scratch row.
# Paper value: see paper Table III.
# Needs checkpoints/r3d18-kinetics_backbone.pth, see configs/README.md.
_base_ = [
    '../../_base_/models/r3d18_gap-linear_lidc.py',
    '../../_base_/datasets/lidc_cls.py',
    '../../_base_/schedules/adam-step_100e_lidc.py',
    '../../_base_/inits/kinetics_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
