# SVD-Net Table V (LiTS liver segmentation), row "Ours Fix-Res1": as "Ours"
# (ImageNet SVD pre-training), with the stem and the first residual stage
# frozen (no gradient, BN statistics fixed).
# Paper numbers: see paper Table V.
_base_ = ['./unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py']
model = dict(backbone=dict(frozen_stages=1))
