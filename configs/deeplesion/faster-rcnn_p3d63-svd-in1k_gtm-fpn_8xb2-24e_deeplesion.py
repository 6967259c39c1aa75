# SVD-Net Table VI (DeepLesion), P3D-63, row "Ours (ImageNet)": the
# backbone starts from SVD-Net's supervised ImageNet pre-training (VDT),
# all layers fine-tuned.
# The tree has no P3D ImageNet config of its own; the R3D-18 recipe with
# the backbone swapped is the pre-training:
#   python tools/train.py \
#       configs/pretrain/imagenet/vdt_r3d18_8xb32-100e_in1k.py \
#       --work-dir work_dirs/vdt_p3d63_8xb32-100e_in1k \
#       --cfg-options model.backbone.type=P3D model.backbone.depth=63 \
#       model.head.in_channels=2048
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/vdt_p3d63_8xb32-100e_in1k/epoch_100.pth \
#       checkpoints/p3d63-svd-in1k_backbone.pth
# The ImageNet pre-training uses BN3d; at 2 volumes per GPU the backbone
# keeps its BN3d with frozen statistics and affine parameters (mmdet's
# habit for ImageNet-initialised detectors).
# Paper: not reported (Table VI has no P3D-63 Ours (ImageNet) row)
_base_ = ['./faster-rcnn_p3d63-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        norm_cfg=dict(_delete_=True, type='BN3d', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/p3d63-svd-in1k_backbone.pth')))
