# SVD-Net pre-training, Table II row "ResNet3D-18 (ours)" with the random
# slice-order shuffle of the official pre-training (the authors' config draws
# a new order of the three colour slices for every image: shuffle_prob=1).
# Any other pre-training config gets the shuffle from the command line:
#   tools/train.py CONFIG \
#       --cfg-options train_dataloader.dataset.pipeline.4.shuffle_prob=1.0
# (index 4 is RGBToVolume in the train pipeline of imagenet_bs32_vdt.py).
# Paper: not reported (the paper prints one ResNet3D-18 row, 73.43 top-1,
#   without saying whether it used the shuffle)
_base_ = ['./vdt_r3d18_8xb32-100e_in1k.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RGBToVolume', slice_order='rgb', shuffle_prob=1.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
