# SVD-Net Table VI (DeepLesion), P3D-63, "Ours (MS-COCO)" row reproduced
# from the weights the authors released with MP3D: the paper has no
# separate row for them.
# The recipe of faster-rcnn_p3d63-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py
# (GN, GTM + FPN, 24 epochs) with MP3D's backbone, which the released
# weights need: P3D(arch='mp3d') has T convolutions in stage 4 too (their
# tensors are in the file), strides in the first 1x1x1 convolution of a
# block, a 1x3x3 stem max-pool and pools the 9 slices to 5, 3, 1, 1 after
# stages 1-3, as MP3D does; the GTM neck takes those depths.
# Weights: mp3d63-d720bda1.pth, from urmagicsmine/MP3D's README,
# "Pre-trained Model":
#   BaiduYun https://pan.baidu.com/s/1zMyw2tcPY1q0SPRpZKSKbQ (code bbrc) or
#   GoogleDrive
#   https://drive.google.com/file/d/1jKdJQ83vZrvOT4N_iZeRvhDuyKWiboqi/view?usp=sharing
# then
#   python tools/model_converters/convert_official.py --kind mp3d63-coco \
#       mp3d63-d720bda1.pth checkpoints/p3d63-mp3d-release-coco_backbone.pth
# Paper: Table VI "Ours (MS-COCO), P3D-63": Sensitivity@0.5FP 82.22,
#   Sensitivity@1FP 87.42, Sensitivity@2FP 90.91, Sensitivity@4FP 93.65,
#   mFROC 88.55 (the paper has no separate row for MP3D's released weights
#   (arch='mp3d'): this is the row they reproduce)
_base_ = ['./faster-rcnn_p3d63-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        arch='mp3d',
        slice_pool_stages=(0, 1, 2),
        init_cfg=dict(
            checkpoint='checkpoints/p3d63-mp3d-release-coco_backbone.pth')),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=[256, 512, 1024, 2048],
            depths=[5, 3, 1, 1],
            mode='group_conv',
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        dict(
            type='FPN',
            in_channels=[256, 512, 1024, 2048],
            out_channels=256,
            num_outs=5),
    ])
