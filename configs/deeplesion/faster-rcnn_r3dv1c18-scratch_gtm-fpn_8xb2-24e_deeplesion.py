# SVD-Net Table VI (DeepLesion universal lesion detection), ResNet3DV1c-18
# (three 3x3x3 stem convolutions), row "Scratch": Faster R-CNN with
# GTM + FPN on 9 slices of 2.5 mm, the backbone trained from a random init
# (GN), 24 epochs, 8 GPUs x 2 volumes. Metric: froc/mFROC (mean
# sensitivity at 0.5/1/2/4 FPs per image) on the official test split.
# Paper: not reported (Table VI has no ResNet3DV1c-18 Scratch row)
_base_ = [
    '../_base_/models/faster-rcnn_r3d18_gtm-fpn_deeplesion.py',
    '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/deeplesion_sgd-step_24e.py',
    'mmdet::_base_/default_runtime.py',
]
# same widths as ResNet3D-18 (64..512), D strides (1, 2, 2, 3)
model = dict(backbone=dict(type='ResNet3DV1c'))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
