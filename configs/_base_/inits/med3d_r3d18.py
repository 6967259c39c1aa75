# Init switch: Med3D (Chen et al., "Med3D: Transfer Learning for 3D Medical
# Image Analysis", 2019), the ResNet-18 of Tencent/MedicalNet pre-trained by
# segmentation on 23 medical datasets (resnet_18_23dataset.pth), converted
# to ResNet3D with
#     python tools/model_converters/convert_baseline.py --type med3d \
#         pretrain/resnet_18_23dataset.pth \
#         checkpoints/r3d18-med3d_backbone.pth
# (its segmentation decoder conv_seg is dropped). The released ResNet-18 and
# -34 use the parameter-free shortcut A (zero-padded, subsampled identity);
# the ResNet-50 and deeper ones the shortcut B (1x1x1 conv + norm, the
# ResNet3D default). Med3D's own strides (dilated layer3/4) change no weight
# shape; the rows keep the strides of their task. The weights carry BN
# statistics: BN3d (the LIDC and LiTS models already use it).
# See configs/_base_/inits/scratch.py for how a row config uses
# `backbone_init`.
backbone_init = dict(
    shortcut_type='A',
    norm_cfg=dict(type='BN3d', requires_grad=True),
    init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/r3d18-med3d_backbone.pth'))
