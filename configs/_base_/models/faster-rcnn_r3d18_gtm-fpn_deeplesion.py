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
#
# Everything not restated here (RoI extractor, assigners, samplers, NMS)
# is that of the COCO pre-training detector.
_base_ = ['./faster-rcnn_r3d18_gtm-fpn.py']
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    # restated whole (_delete_): the base's init_cfg=None could not take
    # the init_cfg dicts of the pre-trained rows
    backbone=dict(
        _delete_=True,
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
    # a list is not merged with the base's: restated whole
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
        anchor_generator=dict(scales=[4]),
        loss_bbox=dict(
            type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
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
    train_cfg=dict(rpn_proposal=dict(max_per_img=2000)),
    # no score threshold: the FROC curve runs to 4 false positives per
    # image, so low-scored boxes count
    test_cfg=dict(rcnn=dict(score_thr=0.0)))
