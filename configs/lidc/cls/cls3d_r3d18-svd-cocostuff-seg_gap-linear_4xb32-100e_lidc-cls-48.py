# Beyond Table IV (LIDC-IDRI nodule malignancy, test AUC), row "SVD
# (COCO-Stuff seg)": 3D ResNet-18 classifier initialised from the VDT
# semantic-segmentation pre-training on COCO-Stuff (configs/pretrain/seg). No
# such row in the paper (it pre-trains on ImageNet and COCO only). Paper
# result: not reported. The SVD-Net ImageNet row
# (cls3d_r3d18-svd-in1k_gap-linear_4xb32-100e_lidc-cls-48.py) with only the
# init changed: the backbone_init of
# configs/_base_/inits/svd-cocostuff-seg_r3d18.py. Needs
# checkpoints/r3d18-svd-cocostuff-seg_backbone.pth (extract_backbone.py).
# Paper: not reported
_base_ = ['./cls3d_r3d18-svd-in1k_gap-linear_4xb32-100e_lidc-cls-48.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-cocostuff-seg_backbone.pth')))
