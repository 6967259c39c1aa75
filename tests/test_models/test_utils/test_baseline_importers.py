"""Importers of the baselines' checkpoints, on the public key layouts.

The checkpoints are built from the documented key names and shapes
(``baseline_layouts.py``; torchvision and mmpretrain layouts from the
libraries themselves) at the released sizes where the layout is the point,
at small widths where values are checked.
"""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from mmpretrain.models.backbones import ResNetV1c

import svd_mm  # noqa: F401
from svd_mm.models.backbones import ResNet3D
from svd_mm.models.utils import (BASELINE_CONVERTERS, convert_acs_resnet,
                                 convert_genesis, convert_kinetics_3d_resnet,
                                 convert_med3d, format_report,
                                 inflate_2d_resnet)
from tests.helpers.tools import load_script


def _load_layouts():
    return load_script(Path(__file__).with_name('baseline_layouts.py'))


layouts = _load_layouts()
SILENT = dict(logger='silent')


def _resnet3d_keys(**kwargs):
    with torch.device('meta'):
        return {
            k: tuple(v.shape)
            for k, v in ResNet3D(**kwargs).state_dict().items()
        }


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


# ---------------------------------------------------------------- Med3D


def test_med3d_resnet18_released_layout(tmp_path):
    """resnet_18.pth: 'module.', stem (64, 1, 7, 7, 7), shortcut A and the
    conv_seg decoder; read from a file like the real one."""
    ckpt = layouts.med3d_checkpoint(18)
    src = ckpt['state_dict']
    path = tmp_path / 'resnet_18_23dataset.pth'
    torch.save(ckpt, path)
    state_dict, report = convert_med3d(str(path), **SILENT)

    assert report['model'] == dict(
        depth=18, base_channels=64, shortcut_type='A', in_channels=1)
    # exactly the tensors of ResNet3D-18 with the shortcut A
    assert _shapes(state_dict) == _resnet3d_keys(depth=18, shortcut_type='A')
    assert 'layer2.0.downsample.conv.weight' not in state_dict
    assert state_dict['conv1.conv.weight'].shape == torch.Size(
        [64, 1, 7, 7, 7])
    # copied unchanged
    pairs = {
        'conv1.conv.weight': 'module.conv1.weight',
        'conv1.bn.running_var': 'module.bn1.running_var',
        'layer3.0.conv1.conv.weight': 'module.layer3.0.conv1.weight',
        'layer4.1.conv2.bn.bias': 'module.layer4.1.bn2.bias',
    }
    for new, old in pairs.items():
        assert torch.equal(state_dict[new], src[old]), new
    assert report['adapted'] == {}
    assert len(report['mapped']) == len(state_dict) == 102
    # the decoder: ConvTranspose3d (2), BN (5), conv (1), BN (5), conv (1)
    conv_seg = [k for k in src if k.startswith('module.conv_seg.')]
    assert len(conv_seg) == 14
    assert sorted(report['dropped']) == sorted(k[len('module.'):]
                                               for k in conv_seg)
    assert set(report['dropped'].values()) == {
        'segmentation decoder of the Med3D pre-training tasks'
    }

    # Med3D's own strides: stem / max-pool / layer2 stride 2 on every axis,
    # layer3 and layer4 dilated
    model = ResNet3D(
        depth=18,
        shortcut_type='A',
        stem_slice_stride=2,
        maxpool_slice_stride=2,
        slice_strides=(1, 2, 1, 1),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4)).eval()
    model.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        out = model(torch.rand(1, 1, 16, 32, 24))
    assert out[0].shape == torch.Size([1, 512, 2, 4, 3])


def test_med3d_resnet50_shortcut_b():
    ckpt = layouts.med3d_checkpoint(50, fill='zeros')
    state_dict, report = convert_med3d(ckpt['state_dict'], depth=50, **SILENT)
    assert report['model'] == dict(
        depth=50, base_channels=64, shortcut_type='B', in_channels=1)
    assert _shapes(state_dict) == _resnet3d_keys(depth=50)
    assert state_dict['layer1.0.downsample.conv.weight'].shape == \
        torch.Size([256, 64, 1, 1, 1])


# ------------------------------------------------------------- Kinetics


def test_kinetics_r3d18_k_200ep_layout():
    """r3d18_K_200ep.pth: no prefix, RGB stem, shortcut B, fc of 700."""
    ckpt = layouts.kinetics_checkpoint(18)
    src = ckpt['state_dict']
    state_dict, report = convert_kinetics_3d_resnet(ckpt['state_dict'],
                                                    **SILENT)
    assert report['model'] == dict(
        depth=18, base_channels=64, shortcut_type='B', in_channels=1)
    assert _shapes(state_dict) == _resnet3d_keys(depth=18)
    # RGB -> grey: summed over the input channels
    torch.testing.assert_close(state_dict['conv1.conv.weight'],
                               src['conv1.weight'].sum(1, keepdim=True))
    assert report['adapted'] == {
        'conv1.conv.weight': 'summed over its 3 input channels'
    }
    assert torch.equal(state_dict['layer2.0.downsample.conv.weight'],
                       src['layer2.0.downsample.0.weight'])
    assert torch.equal(state_dict['layer2.0.downsample.bn.running_mean'],
                       src['layer2.0.downsample.1.running_mean'])
    assert report['dropped'] == {
        'fc.weight': 'classifier of the Kinetics pre-training task',
        'fc.bias': 'classifier of the Kinetics pre-training task'
    }
    ResNet3D(depth=18).load_state_dict(state_dict, strict=True)


def test_kinetics_rgb_target_keeps_the_stem():
    ckpt = layouts.kinetics_checkpoint(18, width=8)
    state_dict, report = convert_kinetics_3d_resnet(
        ckpt['state_dict'], in_channels=3, **SILENT)
    assert torch.equal(state_dict['conv1.conv.weight'],
                       ckpt['state_dict']['conv1.weight'])
    assert report['adapted'] == {}


def test_kinetics_cvpr2018_resnet18_layout(tmp_path):
    """resnet-18-kinetics.pth: 'module.', shortcut A, fc of 400 and no
    BatchNorm counters (PyTorch 0.3)."""
    ckpt = layouts.kinetics_checkpoint(18, version='cvpr2018')
    assert all(k.startswith('module.') for k in ckpt['state_dict'])
    path = tmp_path / 'resnet-18-kinetics.pth'
    torch.save(ckpt, path)
    state_dict, report = convert_kinetics_3d_resnet(str(path), **SILENT)
    assert report['model']['shortcut_type'] == 'A'
    assert _shapes(state_dict) == _resnet3d_keys(depth=18, shortcut_type='A')
    # stem + 16 block norms, counters set to 0
    assert len(report['added']) == 17
    assert state_dict['layer4.1.conv2.bn.num_batches_tracked'].item() == 0
    assert 'added 17 tensors' in format_report(report)
    assert set(report['dropped']) == {'fc.weight', 'fc.bias'}
    assert report['dropped']['fc.weight'].startswith('classifier')


@pytest.mark.parametrize('version', ['current', 'cvpr2018'])
def test_kinetics_resnet50_layouts(version):
    ckpt = layouts.kinetics_checkpoint(50, version=version, fill='zeros')
    state_dict, report = convert_kinetics_3d_resnet(ckpt['state_dict'],
                                                    **SILENT)
    # 3D-ResNets-50 uses the shortcut B in both versions
    assert report['model'] == dict(
        depth=50, base_channels=64, shortcut_type='B', in_channels=1)
    assert _shapes(state_dict) == _resnet3d_keys(depth=50)


def test_kinetics_other_temporal_stem_is_refused():
    """conv1_t_size=3 gives a (64, 3, 3, 7, 7) stem that ResNet3D's
    7x7x7 stem cannot take."""
    ckpt = layouts.kinetics_checkpoint(18, width=8, conv1_t_size=3)
    with pytest.raises(
            ValueError,
            match=r'conv1\.weight -> conv1\.conv\.weight: checkpoint '
            r'\(8, 3, 3, 7, 7\) vs ResNet3D \(8, 1, 7, 7, 7\)'):
        convert_kinetics_3d_resnet(ckpt['state_dict'], **SILENT)


# ------------------------------------------------------------------ I3D


def _randomise_norms(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.1, generator=gen)
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)


def test_i3d_inflated_resnet18_answers_like_the_2d_one():
    """On a volume of identical grey slices, the inflated ResNet3D-18 gives
    at the central slice exactly what torchvision's resnet18 gives on the
    grey image (as RGB).

    Along D no layer strides; the zero padding of the D borders reaches 3
    slices inward in the stem, 1 more in the max-pool and in each of the 16
    3x3x3 convolutions: with D = 41 the central slice (20) is free of it,
    where each inflated kernel sums k_d equal slices times w / k_d.
    """
    torch.manual_seed(0)
    resnet2d = torchvision.models.resnet18()
    _randomise_norms(resnet2d)
    resnet2d.eval()
    state_dict, report = inflate_2d_resnet(resnet2d.state_dict(), **SILENT)
    assert report['model'] == dict(
        depth=18, base_channels=64, shortcut_type='B', in_channels=1)
    assert report['adapted']['conv1.conv.weight'] == (
        'summed over its 3 input channels; inflated: repeated 7 times along '
        'depth and divided by 7')
    assert report['adapted']['layer1.0.conv1.conv.weight'] == (
        'inflated: repeated 3 times along depth and divided by 3')
    assert report['adapted']['layer2.0.downsample.conv.weight'] == (
        'inflated: repeated 1 times along depth and divided by 1')
    resnet3d = ResNet3D(depth=18, out_indices=(0, 1, 2, 3)).eval()
    resnet3d.load_state_dict(state_dict, strict=True)

    grey = torch.rand(1, 1, 32, 48)
    depth, centre = 41, 20
    with torch.no_grad():
        x = resnet2d.maxpool(
            resnet2d.relu(
                resnet2d.bn1(resnet2d.conv1(grey.expand(1, 3, -1, -1)))))
        outs2d = []
        for layer in (resnet2d.layer1, resnet2d.layer2, resnet2d.layer3,
                      resnet2d.layer4):
            x = layer(x)
            outs2d.append(x)
        outs3d = resnet3d(grey.unsqueeze(2).expand(1, 1, depth, 32, 48))
    for out2d, out3d in zip(outs2d, outs3d):
        assert out3d.shape == torch.Size(
            [1, out2d.size(1), depth, *out2d.shape[2:]])
        scale = out2d.abs().max()
        assert scale > 0
        err = (out3d[:, :, centre] - out2d).abs().max() / scale
        assert err < 1e-5, err
    # the border slices do feel the zero padding: the check is not trivial
    border = (outs3d[3][:, :, 0] -
              outs2d[3]).abs().max() / outs2d[3].abs().max()
    assert border > 1e-2


def test_i3d_reads_the_mmpretrain_layout():
    """mmpretrain's ResNet keys are torchvision's under 'backbone.'; the
    classifier 'head.fc' is dropped; both give the same ResNet3D."""
    torch.manual_seed(0)
    backbone = MMPretrainResNet(depth=18)
    tv_keys = {
        k
        for k in torchvision.models.resnet18().state_dict()
        if not k.startswith('fc.')
    }
    assert set(backbone.state_dict()) == tv_keys
    mm_ckpt = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    mm_ckpt['head.fc.weight'] = torch.randn(1000, 512)
    mm_ckpt['head.fc.bias'] = torch.randn(1000)
    from_mm, report = inflate_2d_resnet(mm_ckpt, **SILENT)
    from_tv, _ = inflate_2d_resnet(backbone.state_dict(), **SILENT)
    assert from_mm.keys() == from_tv.keys()
    for key in from_mm:
        assert torch.equal(from_mm[key], from_tv[key]), key
    assert report['dropped'] == {
        'head.fc.weight': "outside the backbone (prefix 'backbone.')",
        'head.fc.bias': "outside the backbone (prefix 'backbone.')"
    }


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
@pytest.mark.parametrize('convert', [inflate_2d_resnet, convert_acs_resnet])
def test_2d_resnet_depths(depth, convert):
    sd = layouts.resnet_layout(depth, dims=2, width=4, fill='zeros')
    state_dict, report = convert(sd, **SILENT)
    assert report['model']['depth'] == depth
    assert report['model']['base_channels'] == 4
    conv_cfg = dict(type='ACSConv') if convert is convert_acs_resnet else None
    kwargs = dict(depth=depth, base_channels=4)
    if conv_cfg:
        kwargs['conv_cfg'] = conv_cfg
    assert _shapes(state_dict) == _resnet3d_keys(**kwargs)


# ------------------------------------------------------------------ ACS


def test_acs_keeps_the_2d_weights():
    torch.manual_seed(0)
    resnet2d = torchvision.models.resnet18()
    src = resnet2d.state_dict()
    state_dict, report = convert_acs_resnet(src, **SILENT)
    assert report['model'] == dict(
        depth=18,
        base_channels=64,
        shortcut_type='B',
        in_channels=1,
        conv_cfg=dict(type='ACSConv'))
    assert report['adapted'] == {
        'conv1.conv.weight': 'summed over its 3 input channels'
    }
    assert state_dict['layer3.1.conv2.conv.weight'].shape == torch.Size(
        [256, 256, 3, 3])
    assert torch.equal(state_dict['layer3.1.conv2.conv.weight'],
                       src['layer3.1.conv2.weight'])
    torch.testing.assert_close(state_dict['conv1.conv.weight'],
                               src['conv1.weight'].sum(1, keepdim=True))
    model = ResNet3D(depth=18, conv_cfg=dict(type='ACSConv')).eval()
    model.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        out = model(torch.rand(1, 1, 8, 32, 32))
    assert out[0].shape == torch.Size([1, 512, 8, 1, 1])


# --------------------------------------------------------------- errors


def test_resnet_importer_errors():
    sd = layouts.resnet_layout(18, dims=3, in_channels=1, width=4)
    # Med3D's ResNet-10 has no ResNet3D counterpart
    with pytest.raises(ValueError, match=r'\(1, 1, 1, 1\) basic blocks'):
        convert_med3d(
            layouts.resnet_layout(10, in_channels=1, width=4), **SILENT)
    # the expected depth differs
    with pytest.raises(
            ValueError, match='ResNet-34, but the checkpoint is '
            'a ResNet-18'):
        convert_med3d(sd, depth=34, **SILENT)
    # a tensor is missing
    incomplete = dict(sd)
    del incomplete['layer4.1.bn2.running_var']
    with pytest.raises(KeyError, match=r'layer4\.1\.conv2\.bn\.running_var'):
        convert_med3d(incomplete, **SILENT)
    # a key of another architecture (mmpretrain's deep stem)
    v1c = {
        f'backbone.{k}': v
        for k, v in ResNetV1c(depth=18).state_dict().items()
    }
    with pytest.raises(KeyError, match=r'stem\.0\.conv\.weight'):
        inflate_2d_resnet(v1c, **SILENT)
    # no stem
    no_stem = {k: v for k, v in sd.items() if k != 'conv1.weight'}
    with pytest.raises(KeyError, match="'conv1.weight'"):
        convert_med3d(no_stem, **SILENT)
    # stages missing
    with pytest.raises(KeyError, match=r'layer1 to layer4'):
        convert_med3d(
            {
                k: v
                for k, v in sd.items() if not k.startswith('layer4')
            }, **SILENT)
    # not a state dict
    with pytest.raises(TypeError, match='checkpoint path or a state dict'):
        convert_med3d([1, 2], **SILENT)
    # a missing file
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        convert_med3d('/nonexistent/missing.pth', **SILENT)


# -------------------------------------------------------------- Genesis


def test_genesis_keys_and_kernel_axes():
    src = layouts.genesis_checkpoint(base=4)['state_dict']
    state_dict, report = convert_genesis(src, **SILENT)
    assert len(state_dict) == len(src) == len(report['mapped'])
    assert report['model'] == dict(
        in_channels=1, base_channels=4, out_channels=1)
    first = src['module.down_tr64.ops.0.conv1.weight']
    assert first.shape == torch.Size([4, 1, 3, 3, 3])
    # (x, y, z) kernels -> (z, y, x) = (D, H, W)
    assert torch.equal(state_dict['backbone.down_tr64.ops.0.conv1.weight'],
                       first.permute(0, 1, 4, 3, 2))
    assert torch.equal(
        state_dict['backbone.up_tr128.up_conv.weight'],
        src['module.up_tr128.up_conv.weight'].permute(0, 1, 4, 3, 2))
    assert torch.equal(state_dict['backbone.up_tr64.ops.1.bn1.running_var'],
                       src['module.up_tr64.ops.1.bn1.running_var'])
    assert torch.equal(state_dict['decode_head.conv_seg.bias'],
                       src['module.out_tr.final_conv.bias'])
    assert state_dict['backbone.up_tr256.ops.0.conv1.weight'].shape == \
        torch.Size([32, 96, 3, 3, 3])
    assert report['dropped'] == {}
    # all 3D kernels are permuted: 14 convolutions, 3 up-convolutions, out
    assert len(report['adapted']) == 18

    kept, report = convert_genesis(src, source_axes='zyx', **SILENT)
    assert torch.equal(kept['backbone.down_tr64.ops.0.conv1.weight'], first)
    assert report['adapted'] == {}


def test_genesis_errors():
    src = layouts.genesis_layout(base=4)
    # axes must be a permutation of xyz
    with pytest.raises(ValueError, match='permutation'):
        convert_genesis(src, source_axes='xyy', **SILENT)
    # a block is missing
    with pytest.raises(KeyError, match='up_tr64'):
        convert_genesis(
            {
                k: v
                for k, v in src.items() if not k.startswith('up_tr64')
            }, **SILENT)
    # a key of another network
    with pytest.raises(KeyError, match=r'dense_1\.weight'):
        convert_genesis(
            dict(src, **{'dense_1.weight': torch.zeros(2, 2)}), **SILENT)


def test_format_report_and_registry_of_converters():
    ckpt = layouts.med3d_checkpoint(18, width=4)
    _, report = convert_med3d(ckpt['state_dict'], **SILENT)
    text = format_report(report)
    assert text.splitlines()[0] == (
        "Med3D: mapped 102 tensors onto depth=18, base_channels=4, "
        "shortcut_type='A', in_channels=1")
    assert ('  dropped 14 tensors:\n    conv_seg.0.weight, conv_seg.0.bias, '
            'conv_seg.1.weight, ... (14 keys): segmentation decoder of the '
            'Med3D pre-training tasks') in text
    assert set(BASELINE_CONVERTERS) == {
        'med3d', 'kinetics', 'i3d', 'acs', 'genesis'
    }
