# SVD-Net pre-training, Table II row "ResNet3DV1c-18" (deep 3x3x3 stem):
# top-1 on ImageNet-1k val. 33.73 M params.
# The R3D-18 recipe (VDT volumes (N, 1, 3, 224, 224), 3D GAP, fc, label
# smoothing 0.1, SGD lr 0.1 + cosine, 8 GPUs x 32) with the 7x7x7 stem
# replaced by three 3x3x3 convolutions; the head is unchanged (512-d).
# Paper: not reported (the paper pre-trains ResNet3DV1c-18 on MS-COCO only)
_base_ = [
    '../../_base_/models/vdt_r3d18_in1k.py',
    '../../_base_/datasets/imagenet_bs32_vdt.py',
    '../../_base_/schedules/imagenet_sgd-cos_8xb32-100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(type='ResNet3DV1c', depth=18), head=dict(in_channels=512))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
