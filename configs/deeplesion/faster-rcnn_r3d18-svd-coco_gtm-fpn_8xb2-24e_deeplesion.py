# SVD-Net Table VI (DeepLesion), ResNet3D-18, row "Ours (MS-COCO)": the
# backbone starts from SVD-Net's COCO detection pre-training
# (configs/pretrain/coco/faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py, GN,
# no stride along D), all layers fine-tuned; the GTM, FPN and heads start
# anew (the GTM now fuses 9/5/3/1 slices instead of 3).
# Checkpoint: extract the backbone of the pre-training run with
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco/epoch_72.pth \
#       checkpoints/r3d18-svd-coco_backbone.pth
# Paper: Table VI "Ours (MS-COCO), ResNet3D-18": Sensitivity@0.5FP 76.07,
#   Sensitivity@1FP 82.16, Sensitivity@2FP 86.67, Sensitivity@4FP 90.12,
#   mFROC 83.76
_base_ = ['./faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-coco_backbone.pth')))
