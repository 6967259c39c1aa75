# SVD-Net Table VI (DeepLesion universal lesion detection), ResNet3D-18,
# baseline row: the backbone initialised from I3D (an ImageNet-1k 2D ResNet-18,
# each kernel inflated along D), all layers fine-tuned; the GTM, FPN and heads
# start anew.
# The weights carry BatchNorm statistics: as the "Ours (ImageNet)" row, the
# backbone keeps BN3d with frozen statistics and affine parameters (2 volumes
# per GPU); the scratch row uses GN.
# The backbone arguments and the checkpoint are those of the init switch
# configs/_base_/inits/i3d-in1k_r3d18.py (the LIDC and LiTS rows list it as
# a _base_; here they are written out next to the norm override). Checkpoint:
#   python tools/model_converters/convert_baseline.py --type i3d \
#       pretrain/resnet18-f37072fd.pth \
#       checkpoints/r3d18-i3d-in1k_backbone.pth
# Paper: Table VI "I3D, ResNet3D-18": Sensitivity@0.5FP 57.93,
#   Sensitivity@1FP 67.51, Sensitivity@2FP 75.54, Sensitivity@4FP 81.69,
#   mFROC 70.67
_base_ = ['./faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        norm_cfg=dict(_delete_=True, type='BN3d', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-i3d-in1k_backbone.pth')))
