# LIDC-IDRI nodule malignancy (the ACS / SVD-Net release, see
# svd_mm.datasets.LIDCNoduleDataset): malignancy 1-2 benign, 4-5 malignant,
# 3 dropped. Augmentation of the official code: a 48^3 crop around the
# volume centre moved by up to 5 voxels per axis, quarter turns in the
# three planes, flips; intensities voxel / 255 - 0.5. Test: centre crop.
dataset_type = 'LIDCNoduleDataset'
data_root = 'data/lidc'
crop_size = 48

train_pipeline = [
    dict(type='LoadNoduleNpz'),
    dict(type='CenterCrop3D', crop_size=crop_size, jitter=5),
    dict(type='RandomRot90_3D', prob=0.75, axes=((0, 1), (0, 2), (1, 2))),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='ScaleIntensity', scale=1. / 255., offset=-0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadNoduleNpz'),
    dict(type='CenterCrop3D', crop_size=crop_size),
    dict(type='ScaleIntensity', scale=1. / 255., offset=-0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        task='cls',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        task='cls',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
# AUC (main), accuracy, sensitivity, specificity, precision, F1
val_evaluator = dict(type='BinaryClsMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
