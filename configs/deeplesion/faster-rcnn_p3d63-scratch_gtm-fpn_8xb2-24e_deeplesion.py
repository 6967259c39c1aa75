# SVD-Net Table VI (DeepLesion universal lesion detection), P3D-63, row
# "Scratch": Faster R-CNN with GTM + FPN on 9 slices of 2.5 mm, the
# backbone trained from a random init (GN), 24 epochs, 8 GPUs x 2 volumes.
# Metric: froc/mFROC (mean sensitivity at 0.5/1/2/4 FPs per image) on the
# official test split.
# P3D-63: 1x7x7 stem, A/B/C bottlenecks in stages 1-3, 2D units in stage 4,
# 256/512/1024/2048 channels. The depth shrinks 9 -> 5 -> 3 -> 1 by a
# slice max-pool (kernel 3, stride 2, centred on the key slice) at the end
# of stages 2, 3 and 4, with no parameters, so any P3D-63 checkpoint loads.
# Paper: not reported (Table VI has no P3D-63 Scratch row)
_base_ = [
    '../_base_/models/faster-rcnn_r3d18_gtm-fpn_deeplesion.py',
    '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/deeplesion_sgd-step_24e.py',
    'mmdet::_base_/default_runtime.py',
]
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(
        type='P3D',
        depth=63,
        slice_strides=(1, 1, 1, 1),
        slice_pool_stages=(1, 2, 3)),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=[256, 512, 1024, 2048],
            depths=[9, 5, 3, 1],
            mode='group_conv',
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[256, 512, 1024, 2048],
            out_channels=256,
            num_outs=5),
    ])
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
