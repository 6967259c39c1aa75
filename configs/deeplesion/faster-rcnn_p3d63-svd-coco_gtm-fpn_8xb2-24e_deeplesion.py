# SVD-Net Table VI (DeepLesion), P3D-63, row "Ours (MS-COCO)": the backbone
# starts from SVD-Net's COCO detection pre-training
# (configs/pretrain/coco/faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py, GN,
# no stride or pooling along D), all layers fine-tuned; GTM, FPN and heads
# start anew. Paper: mFROC 88.55 (the paper's best DeepLesion result).
# Checkpoint: extract the backbone of the pre-training run with
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco/epoch_72.pth \
#       checkpoints/p3d63-svd-coco_backbone.pth
# Paper: Table VI "Ours (MS-COCO), P3D-63": Sensitivity@0.5FP 82.22,
#   Sensitivity@1FP 87.42, Sensitivity@2FP 90.91, Sensitivity@4FP 93.65,
#   mFROC 88.55
_base_ = ['./faster-rcnn_p3d63-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/p3d63-svd-coco_backbone.pth')))
