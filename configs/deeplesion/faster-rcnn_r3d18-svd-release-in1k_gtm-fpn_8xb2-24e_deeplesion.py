# SVD-Net Table VI (DeepLesion), ResNet3D-18, "Ours (ImageNet)" row
# reproduced from the weights the authors released: the paper has no
# separate row for them. The recipe of
# faster-rcnn_r3d18-svd-in1k_gtm-fpn_8xb2-24e_deeplesion.py (frozen BN3d);
# only the checkpoint differs.
# Weights: the SVD-Net ResNet3D-18 pre-trained on ImageNet (BN3d), from
# urmagicsmine/CSPR's README, "Pre-trained Model":
#   BaiduYun https://pan.baidu.com/s/1dUv-YCv_FL02ywOxk-blqw (code 865y) or
#   GoogleDrive https://drive.google.com/file/d/1TlaGFA154RfunoLFzvP8SRjzVL8zGTOI/view?usp=share_link
# then
#   python tools/model_converters/convert_official.py --kind svd-r3d18-in1k \
#       <downloaded file> checkpoints/r3d18-svd-release-in1k_backbone.pth
# Paper: Table VI "Ours (ImageNet), ResNet3D-18": Sensitivity@0.5FP 74.18,
#   Sensitivity@1FP 81.55, Sensitivity@2FP 86.77, Sensitivity@4FP 90.68,
#   mFROC 83.30 (the paper has no separate row for the released weights: this
#   is the row they reproduce)
_base_ = ['./faster-rcnn_r3d18-svd-in1k_gtm-fpn_8xb2-24e_deeplesion.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            checkpoint='checkpoints/r3d18-svd-release-in1k_backbone.pth')))
