# Table II 2D baseline: mmpretrain's plain 2D ResNet-18 on RGB images
# (N, 3, 224, 224) under the SVD-Net schedule (SGD lr 0.1 + cosine, 100
# epochs, 8 GPUs x 32), label smoothing 0.1 and the same augmentation as the
# pseudo-3D rows, minus the VDT. 11.69 M params.
# Paper: Table II "ResNet-18 (2D)": Top 1 Accuracy 70.07, Top 5 Accuracy 89.44
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    '../../_base_/datasets/imagenet_bs32_vdt.py',
    '../../_base_/schedules/imagenet_sgd-cos_8xb32-100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)

model = dict(
    # the ImageNet RGB statistics; images are loaded BGR and turned RGB
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

# the pipelines of imagenet_bs32_vdt.py without RGBToVolume
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
