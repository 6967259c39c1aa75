"""A tiny EncoderDecoder3D overfits a real chest CT crop with its lesion."""
import copy
import logging

import nrrd
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed

from svd_mm.evaluation.metrics import DiceMetric3D
from tests.helpers.data_cache import fetch_pyradiomics_ct

CROP = (8, 32, 32)  # (D, H, W); lung1's lesion spans 3 x 26 x 24 voxels
LOSSES = [
    dict(type='CrossEntropyLoss', loss_weight=1.0),
    dict(type='DiceLoss3D', loss_weight=1.0)
]
MODELS_CFGS = {
    # LiTS style: full-resolution stem, U-Net decoder with all skips
    'unet':
    dict(
        backbone=dict(
            type='ResNet3D',
            depth=18,
            base_channels=4,
            num_stages=3,
            strides=(2, 2, 2),
            slice_strides=(1, 2, 2),
            dilations=(1, 1, 1),
            stem_stride=1,
            with_maxpool=False,
            with_stem_out=True,
            out_indices=(0, 1, 2)),
        decode_head=dict(
            type='UNetHead3D',
            in_channels=(4, 4, 8, 16),
            channels=4,
            num_classes=2,
            dropout_ratio=0,
            loss_decode=LOSSES)),
    # LIDC style: light FCN decoder on the last feature
    'fcn':
    dict(
        backbone=dict(
            type='ResNet3D',
            depth=18,
            base_channels=4,
            num_stages=3,
            strides=(1, 2, 1),
            slice_strides=(1, 1, 1),
            dilations=(1, 1, 1),
            with_maxpool=False,
            out_indices=(2, )),
        decode_head=dict(
            type='FCNHead3D',
            in_channels=16,
            channels=8,
            num_classes=2,
            scale_factors=((1, 2, 2), (1, 2, 2)),
            dropout_ratio=0,
            loss_decode=LOSSES)),
}


@pytest.fixture(scope='module')
def ct_crop():
    """A (D, H, W) crop of lung1 around its lesion and the lesion mask."""
    case = fetch_pyradiomics_ct()[0]
    image, _ = nrrd.read(case['image'])  # (x, y, z)
    label, _ = nrrd.read(case['label'])
    image, label = image.transpose(2, 1, 0), label.transpose(2, 1, 0)
    voxels = np.argwhere(label > 0)
    center = (voxels.min(0) + voxels.max(0)) // 2
    origin = [
        int(np.clip(c - s // 2, 0, n - s))
        for c, s, n in zip(center, CROP, image.shape)
    ]
    window = tuple(slice(o, o + s) for o, s in zip(origin, CROP))
    crop_label = (label[window] > 0).astype(np.uint8)
    assert crop_label.sum() == (label > 0).sum()  # the whole lesion
    return image[window].astype(np.float32), crop_label


def _build(name):
    from mmseg.registry import MODELS, TRANSFORMS
    cfg = dict(
        type='EncoderDecoder3D',
        data_preprocessor=dict(
            type='SegVolumeDataPreprocessor', mean=[-500.], std=[500.]),
        test_cfg=dict(mode='whole'),
        **copy.deepcopy(MODELS_CFGS[name]))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
        pack = TRANSFORMS.build(dict(type='PackSegVolumeInputs'))
    return model, pack


def _dice(model, data):
    model.eval()
    with torch.no_grad():
        outputs = model.test_step(data)
    model.train()
    metric = DiceMetric3D()
    metric.process(data, [o.to_dict() for o in outputs])
    return metric.compute_metrics(metric.results)['dice_per_case'], outputs


@pytest.mark.parametrize('name', ['unet', 'fcn'])
def test_overfits_real_ct_lesion(ct_crop, name):
    set_random_seed(0)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    model, pack = _build(name)
    model.init_weights()
    image, label = ct_crop
    packed = pack(
        dict(
            img=image,
            gt_seg_map=label,
            img_shape=CROP,
            ori_shape=CROP,
            case_id='lung1'))
    data = pseudo_collate([packed])
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=0.05))

    losses, dice = [], 0.0
    for step in range(60):
        log_vars = model.train_step(data, optim_wrapper)
        losses.append(log_vars['loss'].item())
        if step % 5 == 4:
            dice, outputs = _dice(model, data)
            if dice > 0.5:
                break
    assert losses[-1] < 0.7 * losses[0]
    assert dice > 0.5, f'Dice {dice:.3f} after {step + 1} steps'

    # both inference modes give predictions at ori_shape
    for test_cfg in (dict(mode='whole'),
                     dict(
                         mode='slide',
                         crop_size=(8, 16, 16),
                         stride=(4, 8, 8),
                         batch_windows=4,
                         blend='gaussian')):
        model.test_cfg = test_cfg
        model.eval()
        with torch.no_grad():
            outputs = model.test_step(data)
        assert outputs[0].pred_sem_seg.data.shape == torch.Size((1, ) + CROP)
        assert outputs[0].seg_logits.data.shape == torch.Size((2, ) + CROP)
        assert outputs[0].case_id == 'lung1'
