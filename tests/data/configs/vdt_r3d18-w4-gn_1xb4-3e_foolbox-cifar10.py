# Tiny pseudo-3D classifier for the tests of tools/train.py and tools/test.py:
# the 20 real CIFAR-10 images of the foolbox wheel (32x32) as VDT volumes
# (N, 1, 3, 32, 32) -> ResNet3D-18 of width 4 with GroupNorm -> 3D GAP -> fc.
# GroupNorm (per sample) makes 2 processes x 2 images train exactly like
# 1 process x 4 images. The pipeline has no random transform and the sampler
# a fixed seed, so a resumed run sees the same data as an uninterrupted one.
# The data folder (laid out by tests.helpers.data_cache.
# layout_classification_set) comes from $SVD_MM_TOOLS_DATA.
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
data_root = '{{$SVD_MM_TOOLS_DATA:data/foolbox}}'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='VolumeDataPreprocessor', mean=[127.5], std=[127.5]),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        base_channels=4,
        out_indices=(3, ),
        norm_cfg=dict(type='GN', num_groups=2)),
    neck=dict(type='GlobalAveragePooling', dim=3),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=32,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))

pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackInputs'),
]
dataset = dict(
    type='CustomDataset',
    data_root=data_root,
    ann_file='meta/train.txt',
    data_prefix='images',
    with_label=True,
    pipeline=pipeline)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dataset,
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0))
# tools/test.py evaluates on the same 20 images (fit, not generalisation)
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(dataset, ann_file='meta/val.txt'),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy', topk=(1, 5))

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[2])
# 20 images, batch 4: 5 iterations an epoch; no validation while training
train_cfg = dict(by_epoch=True, max_epochs=3)
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=4)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=1))
log_processor = dict(window_size=1)
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0, deterministic=True)
