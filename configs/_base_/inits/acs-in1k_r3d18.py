# Init switch: ACS convolutions (Yang et al., "Reinventing 2D Convolutions
# for 3D Images", IEEE JBHI 2021): the 2D kernels of an ImageNet-1k
# ResNet-18 are kept and applied to the axial, coronal and sagittal planes
# by a third of the output channels each (conv_cfg ACSConv, see
# svd_mm/models/utils/acs_conv.py), the RGB stem summed over its channels.
# From torchvision's resnet18 or mmpretrain's resnet18_8xb32_in1k:
#     python tools/model_converters/convert_baseline.py --type acs \
#         pretrain/resnet18-f37072fd.pth \
#         checkpoints/r3d18-acs-in1k_backbone.pth
# (the classifier is dropped). The weights carry BN statistics: BN3d (the
# LIDC and LiTS models already use it). See configs/_base_/inits/scratch.py
# for how a row config uses `backbone_init`.
backbone_init = dict(
    conv_cfg=dict(type='ACSConv'),
    norm_cfg=dict(type='BN3d', requires_grad=True),
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/r3d18-acs-in1k_backbone.pth'))
