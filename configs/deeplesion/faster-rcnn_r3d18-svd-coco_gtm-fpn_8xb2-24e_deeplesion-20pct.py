# SVD-Net Fig. 4 (DeepLesion sensitivity against the fraction of training
# data), ResNet3D-18, curve "SVD (MS-COCO)", point 20 %: the Table VI row
# faster-rcnn_r3d18-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py
# trained on a fixed 20 % of the training key slices (FractionDataset,
# seed 0: the same subset in every repeat and for every curve, nested in the
# larger fractions; the 100 % point is the Table VI row itself). Same
# schedule (24 epochs over the subset); the test split is always whole.
# Paper: Fig. 4 (no printed values)
_base_ = ['./faster-rcnn_r3d18-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='FractionDataset',
        fraction=0.2,
        seed=0,
        dataset={{_base_.train_dataloader.dataset}}))
