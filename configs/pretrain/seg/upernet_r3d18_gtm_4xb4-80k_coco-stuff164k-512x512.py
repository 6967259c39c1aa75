# Semantic-segmentation pre-training through the VDT on COCO-Stuff-164k (171
# classes), ResNet3D-18: no such row in the paper. Paper result: not
# reported.
# UPerNet with GTM as upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py, on
# mmseg's COCO-Stuff-164k data and schedule (80k iterations, 4 GPUs x 4
# images, 512x512 crops, SGD lr 0.01 poly). Evaluation: mIoU on
# COCO-Stuff-164k val. Extract the backbone for fine-tuning (init field
# `svd-cocostuff-seg`) with tools/model_converters/extract_backbone.py.
# Paper: not reported
_base_ = [
    '../../_base_/models/upernet_r3d18_gtm.py',
    '../../_base_/datasets/coco-stuff164k_vdt.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
model = dict(
    decode_head=dict(num_classes=171), auxiliary_head=dict(num_classes=171))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
