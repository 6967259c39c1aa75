# Init switch: ResNet3D-18 after the VDT semantic-segmentation pre-training
# on COCO-Stuff-164k ("SVD (COCO-Stuff seg)"; not in the paper), i.e.
# configs/pretrain/seg/upernet_r3d18_gtm_4xb4-80k_coco-stuff164k-512x512.py
# (UPerNet with GTM, itself started from the SVD-Net ImageNet backbone),
# cut to its backbone (work_dirs/<that config's name>/ holds the run) with
#     python tools/model_converters/extract_backbone.py \
#         work_dirs/<name>/iter_80000.pth \
#         checkpoints/r3d18-svd-cocostuff-seg_backbone.pth
# The pre-training's SyncBN tensors load into BN3d (same keys); the
# fine-tuning strides may differ from the pre-training ones. See
# configs/_base_/inits/scratch.py for how a row config uses backbone_init.
backbone_init = dict(
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/r3d18-svd-cocostuff-seg_backbone.pth'))
