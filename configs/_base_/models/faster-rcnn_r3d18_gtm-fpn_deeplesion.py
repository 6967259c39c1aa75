# SVD-Net DeepLesion detector (Tables VI and VII): Faster R-CNN on a 3D
# backbone in fine-tune mode, one class ('lesion').
#
# 9-slice volume (N, 1, 9, H, W) -> ResNet3D-18 with D strides (1, 2, 2, 3)
# -> 4 levels (N, C_i, D_i, H/s, W/s) with D_i = 9, 5, 3, 1 (s = 4..32)
# -> GTMNeck (grouped 1x1 convolution over the D_i slices of each channel,
# + GN + ReLU) -> 4 levels (N, C_i, H/s, W/s) -> mmdet FPN (+ a max-pooled
# 5th level) -> RPN and RoI heads. mmdet builds the neck list as one
# Sequential.
#
# Norms: GroupNorm (32 groups) in the backbone and the GTM, as the official
# DeepLesion config of SVD-Net (urmagicsmine/CSPR,
# configs/Deeplesion_configs/faster_rcnn_p3d18ba_3dpfn9_..._fromcoco_2x.py:
# GN in the 3D backbone, plain FPN and 2-fc box head) and the COCO
# pre-training (configs/pretrain/coco, GN everywhere), so that a COCO
# backbone transfers all its tensors. With 2 volumes per GPU BatchNorm
# statistics would be unreliable; the rows initialised from the ImageNet
# pre-training (BN3d) switch the backbone to frozen BN3d instead.
#
# Anchors: one scale (4) per level of strides 4..64, i.e. 16, 32, 64, 128
# and 256 px, 3 ratios (the official "as16"): DeepLesion lesions are small.
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    type='FasterRCNN',
    # One volume channel: the mean/std of the ImageNet RGB means/stds, as
    # in the pre-trainings (the slices are HU-windowed to [0, 255]);
    # H and W padded to 32.
    data_preprocessor=dict(
        type='VolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        # fine-tune mode: 9 slices -> 9, 5, 3, 1 along D
        slice_strides=(1, 2, 2, 3),
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        # from scratch (Kaiming init, no init_cfg), as the COCO
        # pre-training; the pre-trained rows add an init_cfg that
        # overwrites every backbone tensor
        zero_init_residual=False),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=[64, 128, 256, 512],
            depths=[9, 5, 3, 1],
            mode='group_conv',
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[64, 128, 256, 512],
            out_channels=256,
            num_outs=5),
    ],
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[4],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0,
                       loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=2000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # no score threshold: the FROC curve runs to 4 false positives per
        # image, so low-scored boxes count
        rcnn=dict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))
