# Semantic-segmentation pre-training through the VDT on PASCAL VOC 2012 +
# SBD aug (21 classes), ResNet3D-18: no such row in the paper. Paper result:
# not reported.
# UPerNet with GTM as upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py, on
# mmseg's VOC-aug data and schedule (as upernet_r18_4xb4-40k_voc12aug-
# 512x512: 40k iterations, 4 GPUs x 4 images, 512x512 crops, SGD lr 0.01
# poly). Evaluation: mIoU on VOC 2012 val.
# Paper: not reported
_base_ = [
    '../../_base_/models/upernet_r3d18_gtm.py',
    '../../_base_/datasets/pascal_voc12_aug_vdt.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
model = dict(
    decode_head=dict(num_classes=21), auxiliary_head=dict(num_classes=21))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
