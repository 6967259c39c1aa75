# SVD-Net Table VII (ablation of the depth modification), ResNet3DV1c-18, row
# "MS-COCO pre-training without the depth modification".
# SVD-Net's pre-training backbones are modified for the 3-slice VDT input:
# no stride along D, so D=3 at every level (configs/pretrain/coco). This row
# fine-tunes exactly as the "Ours (MS-COCO)" row of Table VI
# (faster-rcnn_r3dv1c18-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py, D strides
# 9 -> 9, 5, 3, 1) but from a backbone pre-trained WITHOUT that
# modification, i.e. with ordinary D strides: stages 2-4 stride D by 2 as
# they stride H and W (slice_strides=(1, 2, 2, 2), D=3 -> 3, 2, 1, 1, GTM
# depths [3, 2, 1, 1]). Strides change no tensor shape, so the checkpoint
# loads into the same fine-tuning backbone. Pre-train and extract it with
#   python tools/train.py \
#       configs/pretrain/coco/faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco.py \
#       --work-dir work_dirs/r3dv1c18-coco-nodepthmod \
#       --cfg-options "model.backbone.slice_strides=(1,2,2,2)" \
#       "model.neck.0.depths=[3,2,1,1]"
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/r3dv1c18-coco-nodepthmod/epoch_72.pth \
#       checkpoints/r3dv1c18-svd-coco-nodepthmod_backbone.pth
# Paper: Table VII "w/o mod (depth pooled during pre-training),
#   ResNet3DV1c-18": Sensitivity@0.5FP 76.07, Sensitivity@1FP 82.16,
#   Sensitivity@2FP 86.67, Sensitivity@4FP 90.12, mFROC 83.76 (the paper's
#   Table VII w/o-mod row repeats, digit for digit, its Table VI Ours (MS-COCO)
#   ResNet3D-18 row; quoted as printed)
_base_ = ['./faster-rcnn_r3dv1c18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
checkpoint_file = 'checkpoints/r3dv1c18-svd-coco-nodepthmod_backbone.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
