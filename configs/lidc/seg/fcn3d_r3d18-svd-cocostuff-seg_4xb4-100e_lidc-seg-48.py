# Beyond Table III (LIDC-IDRI nodule segmentation, test Dice), row "SVD
# (COCO-Stuff seg)": 3D ResNet-18 FCN initialised from the VDT
# semantic-segmentation pre-training on COCO-Stuff (configs/pretrain/seg). No
# such row in the paper (it pre-trains on ImageNet and COCO only). Paper
# result: not reported. The SVD-Net ImageNet row
# (fcn3d_r3d18-svd-in1k_4xb4-100e_lidc-seg-48.py) with only the init changed:
# the backbone_init of configs/_base_/inits/svd-cocostuff-seg_r3d18.py. Needs
# checkpoints/r3d18-svd-cocostuff-seg_backbone.pth (extract_backbone.py).
# Paper: not reported
_base_ = ['./fcn3d_r3d18-svd-in1k_4xb4-100e_lidc-seg-48.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-cocostuff-seg_backbone.pth')))
