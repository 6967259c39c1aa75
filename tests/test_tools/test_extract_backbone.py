import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.runner import CheckpointLoader, save_checkpoint

from svd_mm.models.backbones import ResNet3D

TOOL = (
    Path(__file__).parents[2] / 'tools' / 'model_converters' /
    'extract_backbone.py')


def _run(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300)


@pytest.fixture(scope='module')
def detector_ckpt(tmp_path_factory):
    """An mmdet-like checkpoint written by DDP training: ``module.`` +
    backbone, neck and head keys."""
    backbone = ResNet3D(18, base_channels=4)
    backbone.init_weights()
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.normal_()
    state_dict = OrderedDict(
        (f'module.backbone.{k}', v) for k, v in backbone.state_dict().items())
    state_dict['module.neck.lateral.weight'] = torch.randn(8, 32, 1, 1, 1)
    state_dict['module.neck.lateral.bias'] = torch.randn(8)
    state_dict['module.rpn_head.conv.weight'] = torch.randn(8, 8, 3, 3, 3)
    path = tmp_path_factory.mktemp('src') / 'faster-rcnn_r3d18_epoch_12.pth'
    save_checkpoint(
        dict(meta=dict(epoch=12), state_dict=state_dict), str(path))
    return path, backbone


def test_extract_backbone(detector_ckpt, tmp_path):
    src, backbone = detector_ckpt
    dst = tmp_path / 'out' / 'r3d18_backbone.pth'
    proc = _run(src, dst)
    assert proc.returncode == 0, proc.stderr
    num_tensors = len(backbone.state_dict())
    num_values = sum(v.numel() for v in backbone.state_dict().values())
    assert (f"kept {num_tensors} tensors ({num_values} values) under "
            "'backbone.'") in proc.stdout
    assert 'dropped 3 tensors: neck (2), rpn_head (1)' in proc.stdout

    # written under a temporary name, then renamed: nothing else is left
    assert [p.name for p in dst.parent.iterdir()] == ['r3d18_backbone.pth']
    ckpt = CheckpointLoader.load_checkpoint(str(dst))
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta'] == dict(
        source='faster-rcnn_r3d18_epoch_12.pth',
        prefix='backbone.',
        num_params=num_values)
    assert list(ckpt['state_dict']) == list(backbone.state_dict())

    # loads without a prefix, with other strides
    target = ResNet3D(
        18,
        base_channels=4,
        slice_strides=(1, 2, 2, 2),
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    target.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_other_prefix(detector_ckpt, tmp_path):
    src, _ = detector_ckpt
    dst = tmp_path / 'neck.pth'
    # the prefix may omit its final dot
    proc = _run(src, dst, '--prefix', 'neck')
    assert proc.returncode == 0, proc.stderr
    assert "kept 2 tensors (264 values) under 'neck.'" in proc.stdout
    state_dict = torch.load(dst)['state_dict']
    assert list(state_dict) == ['lateral.weight', 'lateral.bias']


def test_missing_source(tmp_path):
    dst = tmp_path / 'dst.pth'
    proc = _run(tmp_path / 'missing.pth', dst)
    # a missing file: a one-line error naming it, no output file
    assert proc.returncode == 1
    assert 'missing.pth' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not dst.exists()


def test_unknown_prefix(detector_ckpt, tmp_path):
    src, _ = detector_ckpt
    dst = tmp_path / 'dst.pth'
    proc = _run(src, dst, '--prefix', 'roi_head.')
    # no key under the prefix: names the prefix and example keys
    assert proc.returncode == 1
    assert "'roi_head.'" in proc.stderr
    assert "'backbone.conv1.conv.weight'" in proc.stderr
    assert not dst.exists()
