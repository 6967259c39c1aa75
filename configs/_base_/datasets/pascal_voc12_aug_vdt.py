# PASCAL VOC 2012 + SBD aug (21 classes) as pseudo-3D volumes: mmseg's own
# data (resize to 2048x512 x [0.5, 2], 512x512 crop, flip, photometric
# distortion, pad to 512x512; test resize to 2048x512), with the
# PackSegInputs at the end of each pipeline replaced by the Variable
# Dimension Transform (RGB -> (1, 3, H, W)) and the volume packing (the
# label map stays (H, W)). Both training sets (train + aug) get the new
# pipeline. Test-time augmentation (tools/test.py --tta) is not supported.
_base_ = 'mmseg::_base_/datasets/pascal_voc12_aug.py'
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackSegVolumeInputs')
]
test_pipeline = _base_.test_pipeline[:-1] + [
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackSegVolumeInputs')
]
dataset_train = dict(_base_.dataset_train, pipeline=train_pipeline)
dataset_aug = dict(_base_.dataset_aug, pipeline=train_pipeline)
train_dataloader = dict(
    dataset=dict(
        type='ConcatDataset', datasets=[dataset_train, dataset_aug]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
