# Table III (LIDC-IDRI nodule segmentation, test Dice), baseline row "ACS
# scratch": 3D ResNet-18 FCN built from ACS convolutions, trained from a
# random init; only the init (the last _base_) differs from the scratch row.
# Paper: Table III "ACS scratch": Dice 74.55 ± 0.35, p 0.00
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/acs-scratch_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
