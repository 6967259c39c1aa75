# Semantic-segmentation pre-training through the VDT on Cityscapes (19
# classes), ResNet3D-18: no such row in the paper. Paper result: not
# reported.
# UPerNet with GTM as upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py, on
# mmseg's Cityscapes data and schedule (as upernet_r18_4xb2-80k_cityscapes-
# 512x1024: 80k iterations, 4 GPUs x 2 images, 512x1024 crops, SGD lr 0.01
# poly). Evaluation: mIoU on Cityscapes val (whole 2048x1024 images).
# Paper: not reported
_base_ = [
    '../../_base_/models/upernet_r3d18_gtm.py',
    '../../_base_/datasets/cityscapes_vdt.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
model = dict(
    decode_head=dict(num_classes=19), auxiliary_head=dict(num_classes=19))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
