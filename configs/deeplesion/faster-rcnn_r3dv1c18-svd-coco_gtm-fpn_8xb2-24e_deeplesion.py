# SVD-Net Table VI (DeepLesion), ResNet3DV1c-18, row "Ours (MS-COCO)": the
# backbone starts from SVD-Net's COCO detection pre-training
# (configs/pretrain/coco/faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco.py, GN,
# no stride along D), all layers fine-tuned; GTM, FPN and heads start anew.
# Paper: Table VI "Ours (MS-COCO), ResNet3DV1c-18": Sensitivity@0.5FP 79.28,
#   Sensitivity@1FP 84.80, Sensitivity@2FP 89.04, Sensitivity@4FP 91.90,
#   mFROC 86.26
# Checkpoint: extract the backbone of the pre-training run with
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco/epoch_72.pth \
#       checkpoints/r3dv1c18-svd-coco_backbone.pth
_base_ = ['./faster-rcnn_r3dv1c18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3dv1c18-svd-coco_backbone.pth')))
