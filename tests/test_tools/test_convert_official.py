"""tools/model_converters/convert_official.py on checkpoints laid out like
the released SVD-Net and MP3D files, saved as mmcv 1.x saves them
(``tests.helpers.official_models``)."""
import os
from pathlib import Path

import pytest
import torch
from mmengine.registry import MODELS

import svd_mm  # noqa: F401
from tests.helpers.official_models import (mp3d_release_checkpoint,
                                           svd_release_checkpoint)
from tests.helpers.tools import load_script

REPO = Path(__file__).parents[2]
tool = load_script(REPO / 'tools' / 'model_converters' / 'convert_official.py',
                   'convert_official')


def _backbone_from_snippet(kind, report, dst):
    """The backbone a config builds from the printed snippet."""
    model = MODELS.build(tool.backbone_config(kind, report, str(dst)))
    model.init_weights()
    return model


@pytest.mark.parametrize('norm', ['BN', 'GN'])
def test_svd_release(tmp_path, capsys, norm):
    ckpt = svd_release_checkpoint(width=8, norm=norm)
    src = tmp_path / 'res3d18_imagenet_BN_73.07-5ff2ecb7.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'checkpoints' / 'r3d18-svd-release-in1k_backbone.pth'
    tool.main(['--kind', 'svd-r3d18-in1k', str(src), str(dst), '--num-groups',
               '4'])
    out = capsys.readouterr().out
    mapped = 120 if norm == 'BN' else 60
    assert (f'SVD-Net release (ResNet3D-18, ImageNet): mapped {mapped} '
            'tensors onto depth=18, base_channels=8') in out
    assert ('dropped 2 tensors:\n    head.fc.weight, head.fc.bias: '
            'classifier of the ImageNet pre-training') in out
    assert 'verified: ResNet3D loads every converted tensor' in out
    assert "config: backbone=dict(type='ResNet3D', depth=18" in out
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['kind'] == 'svd-r3d18-in1k'
    assert saved['meta']['mapped'] == mapped
    assert sorted(saved['meta']['dropped']) == ['head.fc.bias',
                                                'head.fc.weight']
    # no temporary file left
    assert sorted(p.name for p in dst.parent.iterdir()) == [dst.name]
    model = _backbone_from_snippet('svd-r3d18-in1k',
                                   dict(model=saved['meta']['model']), dst)
    n = 'bn' if norm == 'BN' else 'gn'
    assert torch.equal(model.layer4[1].conv2.conv.weight,
                       ckpt['state_dict']['backbone.layer4.1.conv2.weight'])
    assert torch.equal(
        getattr(model.layer3[0].downsample, n).bias,
        ckpt['state_dict']['backbone.layer3.0.downsample.1.bias'])


def test_mp3d_release(tmp_path, capsys):
    ckpt = mp3d_release_checkpoint(width=8)
    src = tmp_path / 'mp3d63-d720bda1.pth'
    torch.save(ckpt, src)
    dst = tmp_path / 'p3d63-mp3d-release-coco_backbone.pth'
    tool.main(['--kind', 'mp3d63-coco', str(src), str(dst), '--num-groups',
               '4'])
    out = capsys.readouterr().out
    assert ('MP3D release (P3D, COCO): mapped 207 tensors onto depth=63, '
            "arch='mp3d', base_channels=8") in out
    assert 'dropped 30 tensors:' in out
    assert 'verified: P3D loads every converted tensor' in out
    saved = torch.load(dst, weights_only=True)
    model = _backbone_from_snippet('mp3d63-coco',
                                   dict(model=saved['meta']['model']), dst)
    assert torch.equal(model.layer4[2].conv2.conv_t.conv.weight,
                       ckpt['state_dict']['backbone.layer4.2.conv3.weight'])
    assert torch.equal(model.conv1.conv_s.conv.weight,
                       ckpt['state_dict']['backbone.conv1_custom.weight'])


def _bad_sources(tmp_path):
    """[--kind, source file, words of the error]."""
    detector = tmp_path / 'mp3d63.pth'
    torch.save(mp3d_release_checkpoint(width=8), detector)
    classifier = tmp_path / 'r3d18.pth'
    torch.save(svd_release_checkpoint(width=8), classifier)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(classifier.read_bytes()[:5000])
    resnet2d = tmp_path / 'resnet18-5c106cde.pth'
    layouts = load_script(
        REPO / 'tests' / 'test_models' / 'test_utils' / 'baseline_layouts.py')
    torch.save(layouts.resnet_layout(18, dims=2, width=8), resnet2d)
    return [
        ('svd-r3d18-in1k', detector, 'is an mmdet detector checkpoint'),
        ('mp3d63-coco', classifier, 'is a classifier checkpoint'),
        ('svd-r3d18-in1k', truncated, 'the file is truncated'),
        ('mp3d63-coco', truncated, 'the file is truncated'),
        ('svd-r3d18-in1k', resnet2d, 'holds a 2D network'),
        ('mp3d63-coco', resnet2d, 'holds a 2D network'),
        ('mp3d63-coco', tmp_path / 'missing.pth', 'does not exist'),
    ]


def test_bad_input_writes_nothing(tmp_path, capsys):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    existing = out_dir / 'existing.pth'
    existing.write_bytes(b'keep me')
    for kind, src, words in _bad_sources(tmp_path):
        for dst in (out_dir / 'new.pth', existing):
            with pytest.raises(SystemExit) as error:
                tool.main(['--kind', kind, str(src), str(dst)])
            message = str(error.value.code)
            assert message.startswith('error: '), message
            assert words in message, (kind, src, message)
            assert str(src) in message, message
            # DST untouched, no temporary file
            assert sorted(os.listdir(out_dir)) == ['existing.pth']
            assert existing.read_bytes() == b'keep me'
