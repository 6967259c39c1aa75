# SVD-Net Table VI (DeepLesion), ResNet3D-18, row "Ours (ImageNet)": the
# backbone starts from SVD-Net's supervised ImageNet pre-training (VDT,
# configs/pretrain/imagenet/vdt_r3d18_8xb32-100e_in1k.py), all layers
# fine-tuned.
# The ImageNet pre-training uses BN3d; at 2 volumes per GPU the backbone
# keeps its BN3d with frozen statistics and affine parameters (mmdet's
# habit for ImageNet-initialised detectors), so that every pre-trained
# tensor, running statistics included, is used.
# Checkpoint: extract the backbone of the pre-training run with
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/vdt_r3d18_8xb32-100e_in1k/epoch_100.pth \
#       checkpoints/r3d18-svd-in1k_backbone.pth
# Paper: Table VI "Ours (ImageNet), ResNet3D-18": Sensitivity@0.5FP 74.18,
#   Sensitivity@1FP 81.55, Sensitivity@2FP 86.77, Sensitivity@4FP 90.68,
#   mFROC 83.30
_base_ = ['./faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        norm_cfg=dict(_delete_=True, type='BN3d', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-svd-in1k_backbone.pth')))
