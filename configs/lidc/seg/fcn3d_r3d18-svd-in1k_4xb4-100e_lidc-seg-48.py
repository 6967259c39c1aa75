# Table III (LIDC-IDRI nodule segmentation, test Dice), row: 3D ResNet-18 FCN
# with the SVD-Net ImageNet pre-training (ours). Needs
# checkpoints/r3d18-svd-in1k_backbone.pth, see configs/lidc/README.md.
# Paper: Table III "Ours (SVD, ImageNet)": Dice 75.95 ± 0.16
_base_ = [
    '../../_base_/models/fcn3d_r3d18_lidc.py',
    '../../_base_/datasets/lidc_seg.py',
    '../../_base_/schedules/adam-poly_100e_lidc-seg.py',
    '../../_base_/inits/svd-in1k_r3d18.py',
]
model = dict(backbone={{_base_.backbone_init}})
