# Semantic-segmentation pre-training through the VDT on ADE20K,
# ResNet3DV1c-18 (deep 3x3x3 stem): no such row in the paper. Paper result:
# not reported.
# As upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py with the V1c backbone
# (mmseg's own UPerNets use ResNetV1c), starting from
# checkpoints/r3dv1c18-svd-in1k_backbone.pth.
# Paper: not reported
_base_ = ['./upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='ResNet3DV1c',
        init_cfg=dict(
            checkpoint='checkpoints/r3dv1c18-svd-in1k_backbone.pth')))
