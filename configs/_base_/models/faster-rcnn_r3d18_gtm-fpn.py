# SVD-Net COCO pre-training detector (Table II): Faster R-CNN with a
# pseudo-3D backbone, trained from scratch with GroupNorm (32 groups) in the
# backbone, the GTM, the FPN and the box head (mmdet's habits for GN
# detectors trained from scratch, configs/scratch and configs/gn).
#
# VDT volume (N, 1, 3, H, W) -> ResNet3D-18 in pre-train mode (no stride
# along D, every stage keeps D=3) -> 4 levels (N, C_i, 3, H/s, W/s)
# -> GTMNeck (grouped 1x1 convolution over the 3 slices of each channel,
# + GN + ReLU) -> 4 levels (N, C_i, H/s, W/s) -> mmdet FPN (GN) -> RPN and
# RoI heads. mmdet builds the neck list as one Sequential.
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    type='FasterRCNN',
    # One volume channel (C'=1): the mean/std of the ImageNet RGB
    # means/stds, as in the ImageNet pre-training; H and W padded to 32.
    data_preprocessor=dict(
        type='VolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        # from scratch (Kaiming init); mmdet's scratch GN configs also
        # start the residual branches at their full scale
        zero_init_residual=False,
        init_cfg=None),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=[64, 128, 256, 512],
            depths=[3, 3, 3, 3],
            mode='group_conv',
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[64, 128, 256, 512],
            out_channels=256,
            num_outs=5,
            norm_cfg=norm_cfg),
    ],
    # mmdet's RPN head has a single conv and no norm_cfg (as in its GN
    # configs)
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            norm_cfg=norm_cfg,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
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
            max_per_img=1000,
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
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))
