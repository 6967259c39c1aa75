# Pseudo-3D ImageNet classifier (SVD-Net pre-training, Table II):
# VDT volume (N, 1, 3, H, W) -> ResNet3D-18 in pre-train mode (depth stride 1
# everywhere, so D stays 3) -> 3D global average pooling -> fc.
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    # One volume channel (C'=1): the mean/std of the ImageNet RGB means/stds.
    data_preprocessor=dict(
        type='VolumeDataPreprocessor', mean=[114.495], std=[57.63]),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        out_indices=(3, ),
        norm_cfg=dict(type='BN3d', requires_grad=True)),
    neck=dict(type='GlobalAveragePooling', dim=3),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1),
        topk=(1, 5)))
