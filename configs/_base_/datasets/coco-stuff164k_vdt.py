# COCO-Stuff-164k (171 classes) as pseudo-3D volumes: mmseg's own data
# (resize to 2048x512 x [0.5, 2], 512x512 crop, flip, photometric
# distortion; test resize to 2048x512), with the PackSegInputs at the end of
# each pipeline replaced by the Variable Dimension Transform (RGB ->
# (1, 3, H, W)) and the volume packing (the label map stays (H, W)).
# Test-time augmentation (tools/test.py --tta) is not supported.
_base_ = 'mmseg::_base_/datasets/coco-stuff164k.py'
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackSegVolumeInputs')
]
test_pipeline = _base_.test_pipeline[:-1] + [
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackSegVolumeInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
