# LIDC-IDRI nodule segmentation (the ACS / SVD-Net release, see
# svd_mm.datasets.LIDCNoduleDataset): every nodule of the split with the
# first rater's mask (answer1). Augmentation of the official code: a 48^3
# crop around the volume centre moved by up to 5 voxels per axis, quarter
# turns in the three planes, flips (the same for volume and mask).
# Test: the 48^3 centre crop, Dice on it (per case and global). The
# predictions stay at the crop size: the test pipeline does not pack
# `ori_shape` (the size of the stored volume, which the segmentor would
# resize them to), so EncoderDecoder3D keeps `img_shape`, the crop's.
dataset_type = 'LIDCNoduleDataset'
data_root = 'data/lidc'
crop_size = 48

train_pipeline = [
    dict(type='LoadNoduleNpz', with_seg=True),
    dict(type='CenterCrop3D', crop_size=crop_size, jitter=5),
    dict(type='RandomRot90_3D', prob=0.75, axes=((0, 1), (0, 2), (1, 2))),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='PackSegVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadNoduleNpz', with_seg=True),
    dict(type='CenterCrop3D', crop_size=crop_size),
    dict(
        type='PackSegVolumeInputs',
        meta_keys=('img_path', 'seg_map_path', 'img_shape', 'pad_shape',
                   'case_id', 'reduce_zero_label')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        task='seg',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        task='seg',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
# dice_per_case (main) and dice_global of the nodule class
val_evaluator = dict(type='DiceMetric3D')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
