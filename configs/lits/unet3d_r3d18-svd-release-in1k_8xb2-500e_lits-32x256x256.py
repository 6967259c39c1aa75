# SVD-Net Table V (LiTS liver segmentation, Dice per case), "Ours (SVD,
# ImageNet)" row reproduced from the weights the authors released: the
# paper has no separate row for them. The recipe
# of unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py; only the
# checkpoint differs.
# Weights: the SVD-Net ResNet3D-18 pre-trained on ImageNet (BN3d), from
# urmagicsmine/CSPR's README, "Pre-trained Model":
#   BaiduYun https://pan.baidu.com/s/1dUv-YCv_FL02ywOxk-blqw (code 865y) or
#   GoogleDrive https://drive.google.com/file/d/1TlaGFA154RfunoLFzvP8SRjzVL8zGTOI/view?usp=share_link
# then
#   python tools/model_converters/convert_official.py --kind svd-r3d18-in1k \
#       <downloaded file> checkpoints/r3d18-svd-release-in1k_backbone.pth
# (a GN file: add the printed norm_cfg to model.backbone).
# Paper: Table V "Ours (SVD, ImageNet)": Dice per case 96.07 ± 0.23 (the paper
#   has no separate row for the released weights: this is the row they
#   reproduce)
_base_ = ['./unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            checkpoint='checkpoints/r3d18-svd-release-in1k_backbone.pth')))
