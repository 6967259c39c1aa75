# SVD-Net pre-training, Table II row "ResNet3D-18 (ours)": top-1 on
# ImageNet-1k val. 33.67 M params, 15.99 GFLOPs at 1x3x224x224.
# Paper: Table II "ResNet3D-18": Top 1 Accuracy 73.43, Top 5 Accuracy 91.31
_base_ = [
    '../../_base_/models/vdt_r3d18_in1k.py',
    '../../_base_/datasets/imagenet_bs32_vdt.py',
    '../../_base_/schedules/imagenet_sgd-cos_8xb32-100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
