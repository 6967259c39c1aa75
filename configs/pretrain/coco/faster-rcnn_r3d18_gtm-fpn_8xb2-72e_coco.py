# SVD-Net COCO pre-training, Table II row "ResNet3D-18": Faster R-CNN with
# GTM + FPN, GN everywhere, from scratch, 72 epochs of multi-scale training
# (shorter side 384-640) on COCO 2017 train, 8 GPUs x 2 images.
# The backbone stays in pre-train mode (no stride along D: D=3 at every
# level, hence GTM depths [3, 3, 3, 3]); extract it for fine-tuning with
# tools/model_converters/extract_backbone.py.
# Paper: Sec. IV-A "ResNet3D-18": box AP 34.2
_base_ = [
    '../../_base_/models/faster-rcnn_r3d18_gtm-fpn.py',
    '../../_base_/datasets/coco_detection_bs2_vdt-ms.py',
    '../../_base_/schedules/coco_sgd-step_8xb2-72e.py',
    'mmdet::_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
# AMP on GPU: tools/train.py CONFIG --amp (fp16 with dynamic loss scaling).
