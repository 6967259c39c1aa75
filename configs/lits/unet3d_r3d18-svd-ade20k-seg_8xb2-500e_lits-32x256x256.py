# Beyond Table V (LiTS liver segmentation, test Dice), row "SVD (ADE20K seg)":
# 3D U-Net on ResNet3D-18 initialised from the VDT semantic-segmentation
# pre-training on ADE20K (configs/pretrain/seg). No such row in the paper (it
# pre-trains on ImageNet and COCO only). Paper result: not reported. The
# SVD-Net ImageNet row (unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py)
# with only the init changed: the backbone_init of
# configs/_base_/inits/svd-ade20k-seg_r3d18.py. Needs
# checkpoints/r3d18-svd-ade20k-seg_backbone.pth (extract_backbone.py).
# Paper: not reported
_base_ = ['./unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-ade20k-seg_backbone.pth')))
