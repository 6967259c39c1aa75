# COCO 2017 detection as pseudo-3D volumes: mmdet's loading and box
# handling, multi-scale training, then the Variable Dimension Transform
# (RGB -> (1, 3, H, W)) and the volume packing.
#
# Scales: the shorter side is drawn from (384, 448, 512, 576, 640) per image
# (keep_ratio); the longer side is capped at 1066 = 640 * 1333 / 800, i.e.
# mmdet's 1333:800 COCO cap scaled to the largest shorter side. Tests run
# at shorter side 512 (the middle of the training range) with the same cap.
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
backend_args = None
max_long_edge = 1066

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(max_long_edge, short)
                for short in (384, 448, 512, 576, 640)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackDetVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(max_long_edge, 512), keep_ratio=True),
    # If you don't have a gt annotation, delete the pipeline
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(
        type='PackDetVolumeInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
