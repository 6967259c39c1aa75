# SVD-Net Table VI (DeepLesion universal lesion detection), ResNet3D-18,
# baseline row: the backbone initialised from Kinetics (the 3D-ResNets-PyTorch
# ResNet-18 r3d18_K_200ep pre-trained on videos, its RGB stem summed over the
# channels; shortcut B), all layers fine-tuned; the GTM, FPN and heads start
# anew.
# The weights carry BatchNorm statistics: as the "Ours (ImageNet)" row, the
# backbone keeps BN3d with frozen statistics and affine parameters (2 volumes
# per GPU); the scratch row uses GN.
# The backbone arguments and the checkpoint are those of the init switch
# configs/_base_/inits/kinetics_r3d18.py (the LIDC and LiTS rows list it as a
# _base_; here they are written out next to the norm override). Checkpoint:
#   python tools/model_converters/convert_baseline.py --type kinetics \
#       pretrain/r3d18_K_200ep.pth \
#       checkpoints/r3d18-kinetics_backbone.pth
# Paper: Table VI "Kinetics, ResNet3D-18": Sensitivity@0.5FP 72.94,
#   Sensitivity@1FP 80.92, Sensitivity@2FP 86.00, Sensitivity@4FP 89.91,
#   mFROC 82.44
_base_ = ['./faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        norm_cfg=dict(_delete_=True, type='BN3d', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/r3d18-kinetics_backbone.pth')))
