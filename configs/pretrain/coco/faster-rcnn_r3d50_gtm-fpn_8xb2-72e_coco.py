# SVD-Net COCO pre-training, Table II row "ResNet3D-50": Faster R-CNN with
# GTM + FPN, GN everywhere, from scratch, 72 epochs of multi-scale training
# (shorter side 384-640) on COCO 2017 train, 8 GPUs x 2 images.
# The 50-layer bottleneck backbone gives 256/512/1024/2048 channels.
# Paper: Sec. IV-A "ResNet3D-50": box AP 37.0
_base_ = ['./faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py']
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(depth=50),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=[256, 512, 1024, 2048],
            depths=[3, 3, 3, 3],
            mode='group_conv',
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[256, 512, 1024, 2048],
            out_channels=256,
            num_outs=5,
            norm_cfg=norm_cfg),
    ])
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
