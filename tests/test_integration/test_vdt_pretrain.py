"""Issue: foundation, end to end on real photos.

The real ImageNet pre-training config (VDT + ResNet3D-18 + 3D GAP + fc), shrunk
to a tiny width and image size, trains with mmengine's Runner on the 20 real
foolbox ImageNet photos; the loss falls; the checkpoint is converted with
``tools/model_converters/extract_backbone.py`` and loaded into a fine-tuning
ResNet3D with other strides.
"""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner

import svd_mm  # noqa: F401
from tests.helpers.data_cache import (fetch_pyradiomics_ct,
                                      layout_classification_set)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The demo config is the real Table II config shrunk to width 8, 64x64 crops.
CONFIG = osp.join(REPO, 'configs/demo/vdt_r3d18-w8_1xb4-8e_foolbox.py')
WIDTH = 8


def tiny_pretrain_cfg(data, work_dir):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data['data_root']
    return cfg


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp('vdt_pretrain')
    data = layout_classification_set(str(root / 'foolbox'))
    cfg = tiny_pretrain_cfg(data, root / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    return dict(root=root, work_dir=root / 'work', metrics=metrics,
                runner=runner)


def _train_losses(work_dir):
    logs = sorted(
        p for p in (work_dir).rglob('vis_data/*.json')
        if not p.name.startswith('scalars'))
    losses = []
    for line in logs[-1].read_text().splitlines():
        rec = json.loads(line)
        if 'loss' in rec and 'epoch' in rec:
            losses.append((rec['epoch'], rec['loss']))
    return losses


def test_loss_falls_on_real_photos(pretrained):
    losses = _train_losses(pretrained['work_dir'])
    assert len(losses) == 40
    first = np.mean([v for e, v in losses if e == 1])
    last = np.mean([v for e, v in losses if e == 8])
    assert np.isfinite([v for _, v in losses]).all()
    # label smoothing 0.1 over 1000 classes: ln(1000) = 6.9 at chance
    assert first > 6.0
    assert last < first - 1.0, (first, last)
    assert 0 <= pretrained['metrics']['accuracy/top1'] <= 100


def test_checkpoint_converts_and_loads_into_finetune_backbone(pretrained):
    work_dir = pretrained['work_dir']
    ckpt = work_dir / 'epoch_8.pth'
    assert ckpt.exists()
    out = pretrained['root'] / 'r3d18_svd.pth'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/model_converters/extract_backbone.py'),
        str(ckpt), str(out)
    ], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    finetune = MODELS.build(
        dict(
            type='ResNet3D',
            depth=18,
            base_channels=WIDTH,
            stem_stride=1,
            slice_strides=(1, 2, 2, 2),
            out_indices=(0, 1, 2, 3),
            init_cfg=dict(type='Pretrained', checkpoint=str(out))))
    finetune.init_weights()
    trained = pretrained['runner'].model.backbone.state_dict()
    loaded = finetune.state_dict()
    conv_keys = [k for k in trained if k.endswith('.weight')]
    assert len(conv_keys) > 20
    for key in trained:
        assert torch.equal(trained[key], loaded[key]), key

    # forward on a real CT patch (pyradiomics lung1 around its lesion)
    import nrrd
    case = fetch_pyradiomics_ct()[0]
    image, _ = nrrd.read(case['image'])  # (x, y, z) = 512 x 512 x 48
    label, _ = nrrd.read(case['label'])
    zc, yc, xc = [int(np.mean(a)) for a in np.nonzero(label.T)]
    vol = image.T.astype(np.float32)  # (z, y, x)
    z0 = min(max(zc - 24, 0), vol.shape[0] - 48)
    patch = vol[z0:z0 + 48, yc - 24:yc + 24, xc - 24:xc + 24]
    x = torch.from_numpy((np.clip(patch, -1024, 400) + 312) / 712.)
    finetune.eval()
    with torch.no_grad():
        feats = finetune(x[None, None].float())
    assert [tuple(f.shape) for f in feats] == [(1, 8, 48, 24, 24),
                                               (1, 16, 24, 12, 12),
                                               (1, 32, 12, 6, 6),
                                               (1, 64, 6, 3, 3)]
    assert all(torch.isfinite(f).all() for f in feats)
