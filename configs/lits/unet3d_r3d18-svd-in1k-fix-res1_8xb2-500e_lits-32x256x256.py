# SVD-Net Table V (LiTS liver segmentation), row "Ours Fix-Res1": as "Ours"
# (ImageNet SVD pre-training), with the stem and the first residual stage
# frozen (no gradient, BN statistics fixed).
# Paper: Table V "Ours (Fix-Res1)": Dice per case 95.82 ± 0.22, p 0.15
_base_ = ['./unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py']
model = dict(backbone=dict(frozen_stages=1))
