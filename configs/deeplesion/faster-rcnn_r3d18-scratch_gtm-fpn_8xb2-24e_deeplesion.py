# SVD-Net Table VI (DeepLesion universal lesion detection), ResNet3D-18,
# row "Scratch": Faster R-CNN with GTM + FPN on 9 slices of 2.5 mm, the
# backbone trained from a random init (GN), 24 epochs, 8 GPUs x 2 volumes.
# Metric: FROC sensitivities at 0.5/1/2/4 FPs per image and their mean
# (froc/mFROC) on the official test split.
# Paper: Table VI "Scratch, ResNet3D-18": Sensitivity@0.5FP 66.51,
#   Sensitivity@1FP 74.20, Sensitivity@2FP 80.33, Sensitivity@4FP 85.22,
#   mFROC 76.57
_base_ = [
    '../_base_/models/faster-rcnn_r3d18_gtm-fpn_deeplesion.py',
    '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/deeplesion_sgd-step_24e.py',
    'mmdet::_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
