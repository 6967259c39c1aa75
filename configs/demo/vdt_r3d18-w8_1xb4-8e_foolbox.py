# `make demo` step 1 (and the foundation test): the real Table II ImageNet
# config (VDT + ResNet3D-18 + 3D GAP + fc, label smoothing, SGD + cosine),
# shrunk to width 8 and 64x64 crops so it trains on 2 CPU cores in a minute,
# on the 20 real ImageNet photos shipped in the foolbox wheel, laid out by
# `tests.helpers.data_cache.layout_classification_set` (set data_root).
_base_ = ['../pretrain/imagenet/vdt_r3d18_8xb32-100e_in1k.py']

data_root = 'data/foolbox'  # written by tools/demo.py
width = 8
crop = 64
max_epochs = 8

model = dict(
    backbone=dict(base_channels=width),
    head=dict(in_channels=width * 8))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop + 8, edge='short'),
    dict(type='RandomCrop', crop_size=crop),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop + 8, edge='short'),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='images',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='images',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = dict(T_max=max_epochs, end=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0, deterministic=True)
