# Init switch: I3D (Carreira and Zisserman, "Quo Vadis, Action
# Recognition?", 2017), a 2D ImageNet-1k ResNet-18 inflated to 3D: each 2D
# kernel (O, I, k, k) is repeated k_d times along depth and divided by k_d
# (7 in the stem, 3 in the blocks, 1 in the shortcuts), the RGB stem summed
# over its channels. From torchvision's resnet18 or mmpretrain's
# resnet18_8xb32_in1k:
#     python tools/model_converters/convert_baseline.py --type i3d \
#         pretrain/resnet18-f37072fd.pth \
#         checkpoints/r3d18-i3d-in1k_backbone.pth
# (the classifier is dropped). The weights carry BN statistics: BN3d (the
# LIDC and LiTS models already use it). See configs/_base_/inits/scratch.py
# for how a row config uses `backbone_init`.
backbone_init = dict(
    norm_cfg=dict(type='BN3d', requires_grad=True),
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/r3d18-i3d-in1k_backbone.pth'))
