# Semantic-segmentation pre-training through the VDT on ADE20K, ResNet3D-50:
# no such row in the paper. Paper result: not reported.
# As upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py with the 50-layer
# bottleneck backbone (256/512/1024/2048 channels), starting from
# checkpoints/r3d50-svd-in1k_backbone.pth, as mmseg's ResNet-50 UPerNet.
# Paper: not reported
_base_ = ['./upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py']
in_channels = [256, 512, 1024, 2048]
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(checkpoint='checkpoints/r3d50-svd-in1k_backbone.pth')),
    neck=dict(in_channels=in_channels),
    decode_head=dict(in_channels=in_channels),
    auxiliary_head=dict(in_channels=1024))
