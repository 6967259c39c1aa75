# NIH DeepLesion universal lesion detection, 9-slice 3D input.
#
# Prepare the jsons from DeepLesion's DL_info.csv (one per official split):
#   python tools/dataset_converters/prepare_deeplesion.py \
#       data/deeplesion/DL_info.csv data/deeplesion/annotations \
#       --images-root data/deeplesion/Images_png
# giving
#   data/deeplesion/
#   ├── Images_png/<patient>_<study>_<series>/<slice:03d>.png  (16-bit)
#   └── annotations/deeplesion_{train,val,test}.json
#
# Each key slice becomes 9 slices 2.5 mm apart (resampled along z from the
# series' own slice interval, HU windowed to [0, 255]) as an (H, W, 9)
# stack that mmdet's 2D transforms resize and flip; SlicesToVolume then
# makes the (1, 9, H, W) volume of the 3D backbone (and flips it along z
# with probability 0.5).
#
# Scales: DeepLesion slices are 512 x 512; training draws the image side
# from (384, 448, 512, 576, 640) per image (keep_ratio: a (s, s) scale
# makes the longer side s), testing uses 512. The test pipeline loads the
# boxes AFTER Resize so that they stay in the original image frame, where
# mmdet rescales the predictions and FROCMetric compares them.
#
# FROC curve: tools/test.py CONFIG CKPT \
#     --cfg-options test_evaluator.plot_dir=work_dirs/froc
# writes froc_curve.png and froc_curve.json there.
dataset_type = 'DeepLesionDataset'
data_root = 'data/deeplesion/'
backend_args = None
num_slices = 9
slice_spacing = 2.5

train_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        slice_spacing=slice_spacing,
        backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(s, s) for s in (384, 448, 512, 576, 640)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='SlicesToVolume', flip_prob=0.5),
    dict(type='PackDetVolumeInputs'),
]
test_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        slice_spacing=slice_spacing,
        backend_args=backend_args),
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    # after Resize: FROCMetric reads the boxes in the original frame
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='SlicesToVolume'),
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
        ann_file='annotations/deeplesion_train.json',
        data_prefix=dict(img='Images_png/'),
        filter_cfg=dict(filter_empty_gt=True),
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
        ann_file='annotations/deeplesion_val.json',
        data_prefix=dict(img='Images_png/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/deeplesion_test.json',
        data_prefix=dict(img='Images_png/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

# sensitivities at 0.5, 1, 2 and 4 false positives per image (IoU >= 0.5);
# main metric froc/mFROC, their mean
val_evaluator = dict(type='FROCMetric')
test_evaluator = val_evaluator
