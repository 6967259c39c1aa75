# Init switch: SVD-Net weights, the ResNet3D-18 pre-trained on ImageNet-1k
# as pseudo-3D volumes (configs/pretrain/imagenet/vdt_r3d18_8xb32-100e_
# in1k.py, Table II) and cut to its backbone with
#     python tools/model_converters/extract_backbone.py \
#         work_dirs/vdt_r3d18_8xb32-100e_in1k/epoch_100.pth \
#         checkpoints/r3d18-svd-in1k_backbone.pth
# (the name scheme of every checkpoint in configs/:
# checkpoints/<backbone>-<init>_backbone.pth, see configs/README.md).
# The fine-tuning strides may differ from the pre-training ones: the weights
# do not depend on them. See configs/_base_/inits/scratch.py for how a row
# config uses `backbone_init`.
backbone_init = dict(
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/r3d18-svd-in1k_backbone.pth'))
