# SVD-Net pre-training, Table II row "ResNet3D-34": top-1 on ImageNet-1k val.
# 63.98 M params.
# The R3D-18 recipe (VDT volumes (N, 1, 3, 224, 224), 3D GAP, fc, label
# smoothing 0.1, SGD lr 0.1 + cosine, 8 GPUs x 32) with the 34-layer backbone
# (basic blocks (3, 4, 6, 3), 512-d output: the head is unchanged).
# Paper: Table II "ResNet3D-34": Top 1 Accuracy 76.11, Top 5 Accuracy 92.71
_base_ = [
    '../../_base_/models/vdt_r3d18_in1k.py',
    '../../_base_/datasets/imagenet_bs32_vdt.py',
    '../../_base_/schedules/imagenet_sgd-cos_8xb32-100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=34), head=dict(in_channels=512))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
