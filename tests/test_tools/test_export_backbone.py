"""export_backbone.py: plain state dicts, and MONAI ResNets computing the
same features as svd_mm's ResNet3D."""
import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import monai.networks.nets as monai_nets
import pytest
import torch
import torch.nn as nn
from mmengine.runner import save_checkpoint

from svd_mm.models.backbones import ResNet3D, ResNet3DV1c
from tests.helpers.tools import load_script

TOOL = (
    Path(__file__).parents[2] / 'tools' / 'model_converters' /
    'export_backbone.py')
export = load_script(TOOL)

# fine-tune modes that MONAI's ResNet represents: stride 2 along D, H, W in
# stages 2-4 and in the max-pool (or none); any stem stride
FINE_TUNE = dict(strides=(1, 2, 2, 2), slice_strides=(1, 2, 2, 2))
# [svd_mm ResNet3D kwargs, MONAI factory, input (N, C, D, H, W)]
MONAI_CASES = [
    # DeepLesion / LiTS-like stems: max-pool strides D too
    [dict(depth=18, base_channels=8, stem_stride=2, maxpool_slice_stride=2,
          **FINE_TUNE), 'resnet18', (2, 1, 16, 40, 48)],
    # LiTS U-Net encoder: full-resolution stem
    [dict(depth=18, base_channels=4, stem_stride=1, maxpool_slice_stride=2,
          **FINE_TUNE), 'resnet18', (1, 1, 12, 32, 24)],
    # no max-pool, parameter-free shortcut, stem strided along D as well
    [dict(depth=18, base_channels=4, stem_slice_stride=2, with_maxpool=False,
          shortcut_type='A', **FINE_TUNE), 'resnet18', (1, 1, 16, 24, 40)],
    [dict(depth=34, base_channels=4, with_maxpool=False, **FINE_TUNE),
     'resnet34', (1, 1, 12, 24, 32)],
    # bottleneck blocks, two input channels
    [dict(depth=50, base_channels=4, in_channels=2, maxpool_slice_stride=2,
          **FINE_TUNE), 'resnet50', (1, 2, 16, 32, 40)],
]


def _trained_like(backbone):
    """Random weights and batch-norm statistics (not the init values)."""
    torch.manual_seed(0)
    for m in backbone.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.normal_(m.weight, std=0.1)
        elif isinstance(m, nn.BatchNorm3d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(7)
    return backbone.eval()


def _checkpoint(path, backbone, kwargs, cfg=True, prefix='backbone.'):
    """An mmengine checkpoint of a model holding ``backbone`` (and a head),
    with the config text mmengine stores in ``meta.cfg``."""
    state = OrderedDict(
        (f'{prefix}{k}', v) for k, v in backbone.state_dict().items())
    state['head.fc.weight'] = torch.randn(3, 8)
    meta = {}
    if cfg:
        meta['cfg'] = ("model = dict(type='ImageClassifier', backbone=dict("
                       f"type='ResNet3D', **{kwargs!r}))\n")
    save_checkpoint(dict(state_dict=state, meta=meta), str(path))
    return str(path)


def _layer_outputs(net, x):
    outs = {}
    hooks = [
        getattr(net, f'layer{i}').register_forward_hook(
            lambda m, inp, out, i=i: outs.__setitem__(i, out))
        for i in range(1, 5)
    ]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    return outs


@pytest.mark.parametrize('kwargs,factory,shape', MONAI_CASES)
def test_monai_same_features(tmp_path, kwargs, factory, shape):
    backbone = _trained_like(ResNet3D(out_indices=(0, 1, 2, 3), **kwargs))
    src = _checkpoint(tmp_path / 'epoch_10.pth', backbone, kwargs)
    dst = str(tmp_path / 'monai.pth')
    report = export.export_backbone(
        src, dst, fmt='monai', depth=kwargs['depth'],
        require_same_features=True)
    assert report['same_features'] is True
    assert report['checked_with_monai'] is True
    assert report['differences'] == []
    monai_kwargs = report['monai_kwargs']
    assert monai_kwargs['widen_factor'] == kwargs['base_channels'] / 64
    assert monai_kwargs['bias_downsample'] is False
    # the documented MONAI call, through its factory function
    net = getattr(monai_nets, factory)(
        spatial_dims=3,
        n_input_channels=kwargs.get('in_channels', 1),
        conv1_t_size=7,
        conv1_t_stride=monai_kwargs['conv1_t_stride'],
        no_max_pool=monai_kwargs['no_max_pool'],
        shortcut_type=kwargs.get('shortcut_type', 'B'),
        bias_downsample=False,
        widen_factor=kwargs['base_channels'] / 64,
        feed_forward=False)
    net.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    net.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        ours = backbone(x)
    theirs = _layer_outputs(net, x)
    for i, feature in enumerate(ours):
        assert theirs[i + 1].shape == feature.shape
        torch.testing.assert_close(theirs[i + 1], feature, rtol=1e-4,
                                   atol=1e-5)
    with open(tmp_path / 'monai.json') as f:
        assert json.load(f) == json.loads(json.dumps(report))


def test_pretrain_mode_exports_weights_only(tmp_path):
    """SVD's pre-training mode (no D stride) has no MONAI twin: the weights
    load, the features differ, and the tool says so."""
    kwargs = dict(depth=18, base_channels=4)
    backbone = _trained_like(ResNet3D(**kwargs))
    src = _checkpoint(tmp_path / 'pretrain.pth', backbone, kwargs)
    report = export.export_backbone(src, str(tmp_path / 'm.pth'), fmt='monai')
    assert report['same_features'] is False
    assert report['differences'] == [
        'slice_strides=(1, 1, 1, 1), MONAI: (1, 2, 2, 2)',
        "maxpool_slice_stride=1, MONAI's max-pool strides D by 2"
    ]
    net = monai_nets.ResNet(**report['monai_kwargs'])
    net.load_state_dict(
        torch.load(tmp_path / 'm.pth', weights_only=True), strict=True)
    # ... and refused when the same features are required
    with pytest.raises(export.NotRepresentableError,
                       match='slice_strides=.1, 1, 1, 1.'):
        export.export_backbone(
            src, str(tmp_path / 'x.pth'), fmt='monai',
            require_same_features=True)
    # without a config the strides are unknown
    src = _checkpoint(tmp_path / 'nocfg.pth', backbone, kwargs, cfg=False)
    report = export.export_backbone(src, str(tmp_path / 'n.pth'), fmt='monai')
    assert report['same_features'] is None
    assert 'conv1_t_stride' not in report['monai_kwargs']


def test_plain_and_backbone_only(tmp_path):
    kwargs = dict(depth=18, base_channels=4)
    backbone = _trained_like(ResNet3D(**kwargs))
    src = _checkpoint(tmp_path / 'full.pth', backbone, kwargs)
    dst = tmp_path / 'plain.pth'
    report = export.export_backbone(src, str(dst))
    assert report['num_tensors'] == len(backbone.state_dict())
    state = torch.load(dst, weights_only=True)
    assert list(state) == list(backbone.state_dict())
    assert list(state)[:2] == ['conv1.conv.weight', 'conv1.bn.weight']
    target = ResNet3D(slice_strides=(1, 2, 2, 2), **kwargs)
    target.load_state_dict(state, strict=True)
    # a backbone-only file of extract_backbone.py is read without prefix
    extracted = tmp_path / 'extracted.pth'
    torch.save(
        dict(
            state_dict=backbone.state_dict(),
            meta=dict(source='full.pth', prefix='backbone.')), extracted)
    report = export.export_backbone(
        str(extracted), str(tmp_path / 'm.pth'), fmt='monai',
        config=None)
    assert report['num_tensors'] == len(backbone.state_dict())


def test_not_representable(tmp_path):
    # the deep stem of ResNet3DV1c
    v1c = ResNet3DV1c(depth=18, base_channels=4)
    src = _checkpoint(tmp_path / 'v1c.pth', v1c, {}, cfg=False)
    with pytest.raises(export.NotRepresentableError, match='deep stem'):
        export.export_backbone(src, str(tmp_path / 'x.pth'), fmt='monai')
    # group norm
    gn = ResNet3D(
        depth=18, base_channels=4, norm_cfg=dict(type='GN', num_groups=2))
    src = _checkpoint(tmp_path / 'gn.pth', gn, {}, cfg=False)
    with pytest.raises(export.NotRepresentableError, match='not batch norm'):
        export.export_backbone(src, str(tmp_path / 'x.pth'), fmt='monai')
    # three stages
    three = ResNet3D(depth=18, base_channels=4, num_stages=3,
                     strides=(1, 2, 2), slice_strides=(1, 1, 1),
                     dilations=(1, 1, 1), out_indices=(2, ))
    src = _checkpoint(tmp_path / 'three.pth', three, {}, cfg=False)
    with pytest.raises(export.NotRepresentableError, match='four'):
        export.export_backbone(src, str(tmp_path / 'x.pth'), fmt='monai')
    # the weights are a ResNet-18, not the --depth asked for
    r18 = ResNet3D(depth=18, base_channels=4)
    src = _checkpoint(tmp_path / 'r18.pth', r18, {}, cfg=False)
    with pytest.raises(export.NotRepresentableError, match='ResNet-18'):
        export.export_backbone(src, str(tmp_path / 'x.pth'), fmt='monai',
                               depth=34)
    # a prefix that matches no key
    with pytest.raises(ValueError, match="starts with 'neck.'"):
        export.export_backbone(src, str(tmp_path / 'x.pth'), prefix='neck.')
    # a missing checkpoint
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        export.export_backbone(str(tmp_path / 'nothing.pth'),
                               str(tmp_path / 'x.pth'))


def test_cli(tmp_path):
    kwargs = dict(
        depth=18, base_channels=4, maxpool_slice_stride=2, **FINE_TUNE)
    src = _checkpoint(tmp_path / 'lits.pth',
                      _trained_like(ResNet3D(**kwargs)), kwargs)
    dst = tmp_path / 'out' / 'r3d18_monai.pth'
    proc = subprocess.run([
        sys.executable,
        str(TOOL), src,
        str(dst), '--format', 'monai', '--depth', '18'
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'monai.networks.nets.ResNet(block=' in proc.stdout
    assert 'same features as the svd_mm backbone' in proc.stdout
    assert 'checked: loads into that network with strict=True' in proc.stdout
    assert dst.is_file() and (tmp_path / 'out' / 'r3d18_monai.json').is_file()
    # errors end the tool with a message, not a traceback
    with pytest.raises(SystemExit, match='error: .*ResNet-18'):
        export.main([src, str(dst), '--format', 'monai', '--depth', '50'])
