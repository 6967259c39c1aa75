# SVD-Net COCO pre-training, Table II row "ResNet3DV1c-18" (deep 3x3x3
# stem): Faster R-CNN with GTM + FPN, GN everywhere, from scratch, 72 epochs
# of multi-scale training (shorter side 384-640) on COCO 2017 train, 8 GPUs
# x 2 images.
# Paper: not reported (used for DeepLesion; its COCO mAP is not given)
_base_ = ['./faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py']
model = dict(backbone=dict(type='ResNet3DV1c'))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
