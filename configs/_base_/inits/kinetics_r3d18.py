# Init switch: a 3D ResNet-18 pre-trained on Kinetics videos (Hara et al.,
# "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and
# ImageNet?", 2018; kenshohara/3D-ResNets-PyTorch): the video axis T
# becomes the depth axis D and the RGB stem is summed over its 3 input
# channels. Converted to ResNet3D with
#     python tools/model_converters/convert_baseline.py --type kinetics \
#         pretrain/r3d18_K_200ep.pth checkpoints/r3d18-kinetics_backbone.pth
# (the classifier fc is dropped). r3d18_K_200ep.pth (Kinetics-700) has the
# shortcut B, the ResNet3D default; the older resnet-18-kinetics.pth
# (Kinetics-400) has the shortcut A: convert it the same way and add
#     --cfg-options model.backbone.shortcut_type=A
# The weights carry BN statistics: BN3d (the LIDC and LiTS models already
# use it). See configs/_base_/inits/scratch.py for how a row config uses
# `backbone_init`.
backbone_init = dict(
    norm_cfg=dict(type='BN3d', requires_grad=True),
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/r3d18-kinetics_backbone.pth'))
