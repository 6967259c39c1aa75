# Init switch: ACS convolutions trained from scratch (the "ACS scratch" rows
# of SVD-Net's Tables III and IV): the ACS network of
# configs/_base_/inits/acs-in1k_r3d18.py (conv_cfg ACSConv, a third of the
# output channels on each of the axial, coronal and sagittal planes, BN3d)
# with a random init instead of the ImageNet-1k ResNet-18 kernels. See
# configs/_base_/inits/scratch.py for how a row config uses `backbone_init`.
backbone_init = dict(
    conv_cfg=dict(type='ACSConv'),
    norm_cfg=dict(type='BN3d', requires_grad=True),
    init_cfg=None)
