# SVD-Net Table VI (DeepLesion universal lesion detection), ResNet3D-18,
# baseline row: the backbone initialised from Med3D (the MedicalNet ResNet-18
# pre-trained by segmentation on 23 medical datasets; shortcut A), all layers
# fine-tuned; the GTM, FPN and heads start anew.
# The weights carry BatchNorm statistics: as the "Ours (ImageNet)" row, the
# backbone keeps BN3d with frozen statistics and affine parameters (2 volumes
# per GPU); the scratch row uses GN.
# The backbone arguments and the checkpoint are those of the init switch
# configs/_base_/inits/med3d_r3d18.py (the LIDC and LiTS rows list it as a
# _base_; here they are written out next to the norm override). Checkpoint:
#   python tools/model_converters/convert_baseline.py --type med3d \
#       pretrain/resnet_18_23dataset.pth \
#       checkpoints/r3d18-med3d_backbone.pth
# Paper: Table VI "Med3D, ResNet3D-18": Sensitivity@0.5FP 58.66,
#   Sensitivity@1FP 68.36, Sensitivity@2FP 76.11, Sensitivity@4FP 82.46,
#   mFROC 71.40
_base_ = ['./faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        shortcut_type='A',
        norm_cfg=dict(_delete_=True, type='BN3d', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-med3d_backbone.pth')))
