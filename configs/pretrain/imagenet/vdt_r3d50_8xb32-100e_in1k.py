# SVD-Net pre-training, Table II row "ResNet3D-50": top-1 on ImageNet-1k val.
# 48.20 M params.
# The R3D-18 recipe (VDT volumes (N, 1, 3, 224, 224), 3D GAP, fc, label
# smoothing 0.1, SGD lr 0.1 + cosine, 8 GPUs x 32) with the 50-layer
# bottleneck backbone, whose output has 2048 channels.
# Paper: Table II "ResNet3D-50": Top 1 Accuracy 77.45, Top 5 Accuracy 93.67
_base_ = [
    '../../_base_/models/vdt_r3d18_in1k.py',
    '../../_base_/datasets/imagenet_bs32_vdt.py',
    '../../_base_/schedules/imagenet_sgd-cos_8xb32-100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling);
# the full-3D bottlenecks at 224x224x3 are the most memory-hungry row, so
# without AMP 32 volumes per GPU may need a GPU with more than 16 GB.
