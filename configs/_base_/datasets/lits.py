# LiTS liver segmentation, prepared by
# tools/dataset_converters/prepare_lits.py (uint8 HU window [-200, 250],
# 1 mm slices, liver = labels 1 + 2, seeded 105 / 13 / 13 split).
# Training: a random 32x256x256 crop per volume, in-plane rescaled by
# 0.8-1.2 (done on a 32x320x320 crop first: cheap, and 320 * 0.8 = 256),
# flipped along D and W. lazy=True: the first crop reads only its box from
# the uncompressed .nii files (the same crop as loading them whole; .nii.gz
# and raw files with preprocess are loaded whole). Validation / test: the
# whole volume (sliding window of the model's test_cfg), Dice per case and
# global Dice on the prepared 1 mm grid.
# Raw LiTS files instead of prepared ones: set
# dataset.data_root to the raw folder, dataset.data_prefix=dict(img_path='',
# seg_map_path='') and dataset.preprocess=dict(window=(-200, 250),
# spacing_z=1.0); ann_file must then point to a split json.
dataset_type = 'LiTSDataset'
data_root = 'data/lits_prepared'
crop_size = (32, 256, 256)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'spacing', 'affine', 'case_id', 'original_geometry',
             'flip_axes', 'rescale_factor')

train_pipeline = [
    dict(type='LoadVolumeNifti', with_seg=True, lazy=True),
    dict(type='RandomCrop3D', crop_size=(32, 320, 320)),
    dict(type='RandomRescale3D', scale_range=(0.8, 1.2), axes=(1, 2)),
    dict(type='RandomCrop3D', crop_size=crop_size),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 2)),
    dict(type='PackSegVolumeInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadVolumeNifti', with_seg=True),
    dict(type='PackSegVolumeInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='split.json',
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='split.json',
        split='val',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='split.json',
        split='test',
        pipeline=test_pipeline))
val_evaluator = dict(type='DiceMetric3D')
test_evaluator = val_evaluator
# Test predictions as NIfTI on the grid of the raw volumes, off by default:
# tools/test.py CONFIG CKPT --cfg-options custom_hooks.0.out_dir=predictions
custom_hooks = [dict(type='SaveVolumePredictionHook', out_dir=None)]
