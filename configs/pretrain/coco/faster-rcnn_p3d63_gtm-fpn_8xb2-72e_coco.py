# SVD-Net COCO pre-training, Table II row "P3D-63": Faster R-CNN with
# GTM + FPN, GN everywhere, from scratch, 72 epochs of multi-scale training
# (shorter side 384-640) on COCO 2017 train, 8 GPUs x 2 images.
# P3D-63: 1x7x7 stem, bottlenecks of the A/B/C cycle (3x1x1 slice
# convolutions) in stages 1-3 and 2D units in stage 4; no stride along D,
# so D=3 at every level; 256/512/1024/2048 channels.
# Paper: Sec. IV-A "P3D-63": box AP 36.5
_base_ = ['./faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py']
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(type='P3D', depth=63),
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
