# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row: 3D
# ResNet-18 FCN initialised from Kinetics (the 3D-ResNets-PyTorch ResNet-18
# pre-trained on videos); only the init (the last _base_) differs from the
# scratch row.
# Needs checkpoints/r3d18-kinetics_backbone.pth, see configs/README.md.
# Paper: Table III "Kinetics": Dice 75.62 ± 0.17, p 0.02
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/kinetics_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
