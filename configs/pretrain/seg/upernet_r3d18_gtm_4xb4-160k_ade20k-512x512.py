# Semantic-segmentation pre-training through the VDT on ADE20K (150
# classes), ResNet3D-18: no such row in the paper (SVD-Net pre-trains on
# ImageNet classification and COCO detection only, Table II; segmentation
# pre-training is mentioned, not run). Paper result: not reported.
# UPerNet with GTM: mmseg's ResNet-18 UPerNet recipe
# (upernet_r18_4xb4-160k_ade20k-512x512: 160k iterations, 4 GPUs x 4
# images, 512x512 crops, SGD lr 0.01 poly, SyncBN) with the 2D backbone
# replaced by ResNet3D-18 in pre-train mode + GTMNeck; the backbone starts
# from the SVD-Net ImageNet pre-training. Evaluation: mIoU on ADE20K val.
# Extract the backbone for fine-tuning (init field `svd-ade20k-seg`) with
# tools/model_converters/extract_backbone.py.
# Paper: not reported
_base_ = [
    '../../_base_/models/upernet_r3d18_gtm.py',
    '../../_base_/datasets/ade20k_vdt.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
