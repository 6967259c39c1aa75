"""Importers of the released SVD-Net and MP3D weights, on the official key
layouts (``tests.helpers.official_models``, built from the official model
code: names, shapes, registration order).

- Every tensor is mapped one to one onto svd_mm's ResNet3D-18 /
  ``P3D(depth=63, arch='mp3d')``: the mapped count equals the official
  tensor count, only the heads are dropped, with their reason.
- The converted backbones reproduce a plain-PyTorch transcription of the
  official forward passes (all stages; for P3D-63 the A, B and C blocks of
  stage 1 and the strided blocks of stages 2-4).
- Bad input (the other release, a 2D ResNet, a truncated file, a tensor of
  another shape, an unknown key) is refused with the file and the key.
- The compared methods' ``_med1channel.pth`` files (CSPR's
  ``medseg/tools/process_pretrained_weights.py``: bare state dict, no
  ``module.``, stem summed over RGB) convert to what the RGB originals do.
"""
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

import svd_mm  # noqa: F401
from svd_mm.models.backbones import P3D, ResNet3D
from svd_mm.models.backbones.p3d import P3DBottleneck
from svd_mm.models.utils import (BASELINE_CONVERTERS, OFFICIAL_CONVERTERS,
                                 convert_mp3d_p3d, convert_svd_release_r3d18)
from tests.helpers.official_models import (MP3D_DETECTOR_SHAPES,
                                           cspr_resnet3d_forward,
                                           cspr_resnet3d_state,
                                           mp3d_p3d_forward, mp3d_p3d_state,
                                           mp3d_release_checkpoint,
                                           svd_release_checkpoint)
from tests.helpers.tools import load_script

layouts = load_script(Path(__file__).with_name('baseline_layouts.py'))

# parameters (weights, biases; no BN statistics) of the released backbones,
# the numbers of the README model table
R3D18_PARAMS = 33_160_000
MP3D63_PARAMS = 27_281_728
P3D63_PARAMS = 24_919_360  # svd_mm's default P3D-63: 2D units in stage 4


def _backbone(state):
    return OrderedDict((k[len('backbone.'):], v) for k, v in state.items()
                       if k.startswith('backbone.'))


def _num_params(state):
    return sum(v.numel() for k, v in state.items()
               if k.endswith(('weight', 'bias')))


@pytest.mark.parametrize('norm', ['BN', 'GN'])
def test_svd_release_layout_maps_one_to_one(norm):
    official = cspr_resnet3d_state(norm=norm)
    state, report = convert_svd_release_r3d18(official, logger='silent')
    backbone = [k for k in official if k.startswith('backbone.')]
    # every official backbone tensor is mapped, once
    assert len(report['mapped']) == len(backbone) == (120 if norm == 'BN'
                                                      else 60)
    assert [s for s, _ in report['mapped']] == backbone
    assert report['dropped'] == {
        k: 'classifier of the ImageNet pre-training (mmcls LinearClsHead)'
        for k in ('head.fc.weight', 'head.fc.bias')
    }
    assert not report['added'] and not report['adapted']
    norm_cfg = (dict(type='BN3d', requires_grad=True) if norm == 'BN' else
                dict(type='GN', num_groups=32, requires_grad=True))
    assert report['model'] == dict(
        depth=18,
        base_channels=64,
        shortcut_type='B',
        in_channels=1,
        norm_cfg=norm_cfg)
    with torch.device('meta'):
        target = ResNet3D(**report['model']).state_dict()
    assert list(state) == list(target)
    for source, key in report['mapped']:
        assert torch.equal(state[key], official[source]), key
    assert _num_params(state) == _num_params(_backbone(official)) == \
        R3D18_PARAMS


def test_mp3d_release_layout_maps_one_to_one():
    official = mp3d_release_checkpoint()['state_dict']
    state, report = convert_mp3d_p3d(official, logger='silent')
    backbone = [k for k in official if k.startswith('backbone.')]
    assert len(report['mapped']) == len(backbone) == 207
    assert [s for s, _ in report['mapped']] == backbone
    assert sorted(report['dropped']) == sorted(MP3D_DETECTOR_SHAPES)
    assert report['dropped']['rpn_head.rpn_cls.weight'] == \
        'rpn_head of the COCO detector, not part of the backbone'
    assert report['model'] == dict(
        depth=63,
        arch='mp3d',
        base_channels=64,
        in_channels=1,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    with torch.device('meta'):
        target = P3D(**report['model'])
        default = P3D(63, norm_cfg=dict(type='GN', num_groups=32))
    assert list(state) == list(target.state_dict())
    for source, key in report['mapped']:
        assert torch.equal(state[key], official[source]), key
    assert _num_params(state) == MP3D63_PARAMS
    assert sum(p.numel() for p in target.parameters()) == MP3D63_PARAMS
    # the default P3D-63 lacks exactly the T convolutions of stage 4
    extra = set(target.state_dict()) - set(default.state_dict())
    assert extra == {
        f'layer4.{j}.conv2.conv_t.{name}'
        for j in range(3) for name in ('conv.weight', 'gn.weight', 'gn.bias')
    }
    assert sum(p.numel() for p in default.parameters()) == P3D63_PARAMS


def test_mp3d_release_bare_backbone_and_conversion_layers():
    """A bare backbone state dict (MP3D's init_weights strips 'backbone.')
    and modified_P3D's group-conv conversions."""
    official = mp3d_p3d_state(width=8, norm='BN')
    official['groupconv_1.weight'] = torch.zeros(32, 9, 1, 1)
    state, report = convert_mp3d_p3d(official, num_groups=4, logger='silent')
    assert report['model']['norm_cfg'] == dict(
        type='BN3d', requires_grad=True)
    assert len(report['mapped']) == len(official) - 1
    assert list(report['dropped']) == ['groupconv_1.weight']
    assert 'GTMNeck' in report['dropped']['groupconv_1.weight']
    assert torch.equal(state['layer4.2.conv2.conv_t.bn.running_var'],
                       official['layer4.2.norm_3.running_var'])


@pytest.mark.parametrize('norm', ['BN', 'GN'])
def test_svd_release_reproduces_official_forward(norm):
    official = cspr_resnet3d_state(width=8, norm=norm, seed=3)
    state, report = convert_svd_release_r3d18(
        official, num_groups=4, logger='silent')
    model = ResNet3D(**report['model'], out_indices=(0, 1, 2, 3)).eval()
    model.load_state_dict(state, strict=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 5, 32, 40, generator=gen)
    expected = cspr_resnet3d_forward(_backbone(official), x, num_groups=4)
    with torch.no_grad():
        outs = model(x)
    assert [o.shape[1:] for o in outs] == [(8, 5, 8, 10), (16, 5, 4, 5),
                                           (32, 5, 2, 3), (64, 5, 1, 2)]
    for out, ref in zip(outs, expected):
        assert ref.abs().max() > 0.1
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_mp3d_release_reproduces_official_forward():
    official = mp3d_release_checkpoint(width=8, seed=5)['state_dict']
    state, report = convert_mp3d_p3d(official, num_groups=4, logger='silent')
    model = P3D(**report['model'], out_indices=(0, 1, 2, 3)).eval()
    model.load_state_dict(state, strict=True)
    # blocks 0, 1, 2 of stage 1 are P3D-A, -B, -C; stage 2 starts with A
    blocks = [[b.structure for b in stage if isinstance(b, P3DBottleneck)]
              for stage in (model.layer1, model.layer2)]
    assert blocks == [['A', 'B', 'C'], ['A', 'B', 'C', 'A']]
    assert all(isinstance(b, P3DBottleneck) and b.style == 'caffe'
               for b in model.modules() if isinstance(b, P3DBottleneck))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 9, 64, 48, generator=gen)
    backbone = _backbone(official)
    expected = mp3d_p3d_forward(backbone, x, num_groups=4)
    with torch.no_grad():
        outs = model(x)
    # MP3D's depths for 9 slices: 5, 3, 1, 1 (it crops [:, :, d // 2])
    assert [tuple(o.shape) for o in outs] == [(2, 32, 5, 16, 12),
                                              (2, 64, 3, 8, 6),
                                              (2, 128, 1, 4, 3),
                                              (2, 256, 1, 2, 2)]
    for out, ref in zip(outs, expected):
        assert ref.abs().max() > 0.1
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # the stem and the A, B, C blocks (and the D pool) of stage 1 alone
    with torch.no_grad():
        stage1 = model.layer1(model.maxpool(model.conv1(x)))
    torch.testing.assert_close(
        stage1,
        mp3d_p3d_forward(backbone, x, blocks=(3, ), num_groups=4)[0],
        rtol=1e-5,
        atol=1e-5)


@pytest.mark.parametrize('kind', sorted(OFFICIAL_CONVERTERS))
def test_missing_batchnorm_counters_are_added(kind):
    """BN checkpoints of PyTorch < 0.4.1 have no num_batches_tracked: set
    to 0 and reported, nothing else added."""
    if kind == 'svd-r3d18-in1k':
        official = cspr_resnet3d_state(width=8, norm='BN')
    else:
        official = mp3d_p3d_state(width=8, norm='BN')
    counters = [k for k in official if k.endswith('num_batches_tracked')]
    for key in counters:
        del official[key]
    state, report = OFFICIAL_CONVERTERS[kind](official, logger='silent')
    assert len(report['added']) == len(counters) > 0
    assert all(k.endswith('num_batches_tracked') for k in report['added'])
    assert all(state[k] == 0 for k in report['added'])
    assert len(report['mapped']) == len(official) - (
        2 if kind == 'svd-r3d18-in1k' else 0)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
def test_detector_checkpoint_for_the_classifier_kind():
    detector = mp3d_release_checkpoint(width=8)['state_dict']
    with pytest.raises(ValueError, match='is an mmdet detector checkpoint.*'
                       'expects an mmcls 0.x ImageClassifier.*'
                       '--kind mp3d63-coco'):
        convert_svd_release_r3d18(detector, logger='silent')


def test_classifier_checkpoint_for_the_detector_kind():
    classifier = cspr_resnet3d_state(width=8)
    with pytest.raises(ValueError, match='is a classifier checkpoint.*'
                       'expects an mmdet 2.x detector checkpoint.*'
                       '--kind svd-r3d18-in1k'):
        convert_mp3d_p3d(classifier, logger='silent')
    # its bare backbone has no P3D stem
    bare = _backbone(classifier)
    with pytest.raises(KeyError, match="no P3D stem 'conv1_custom.weight'"):
        convert_mp3d_p3d(bare, logger='silent')


@pytest.mark.parametrize('kind', sorted(OFFICIAL_CONVERTERS))
@pytest.mark.parametrize('prefix', ['', 'backbone.'])
def test_2d_resnet_is_refused(kind, prefix):
    state = OrderedDict(
        (prefix + k, v)
        for k, v in layouts.resnet_layout(18, dims=2, width=8).items())
    with pytest.raises(ValueError,
                       match=r"holds a 2D network: 'conv1.weight' has shape "
                       r'\(8, 3, 7, 7\) \(4 dims\).*--type i3d'):
        OFFICIAL_CONVERTERS[kind](state, logger='silent')


@pytest.mark.parametrize('kind', sorted(OFFICIAL_CONVERTERS))
def test_truncated_file(kind, tmp_path):
    ckpt = (svd_release_checkpoint(width=8) if kind == 'svd-r3d18-in1k' else
            mp3d_release_checkpoint(width=8))
    path = tmp_path / 'release.pth'
    torch.save(ckpt, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError,
                       match=f"cannot read checkpoint '{path}': the file is "
                       'truncated or not a PyTorch checkpoint'):
        OFFICIAL_CONVERTERS[kind](str(path), logger='silent')


def test_shape_mismatch_names_key_and_shapes():
    official = mp3d_p3d_state(width=8)
    official['layer3.1.conv3.weight'] = torch.zeros(32, 32, 3, 3, 3)
    with pytest.raises(ValueError,
                       match=re.escape(
                           "tensor 'layer3.1.conv3.weight' of checkpoint "
                           '<state_dict> has shape (32, 32, 3, 3, 3), but '
                           "'layer3.1.conv2.conv_t.conv.weight' of the "
                           'target has shape (32, 32, 3, 1, 1)')):
        convert_mp3d_p3d(official, num_groups=4, logger='silent')
    official = cspr_resnet3d_state(width=8)
    official['backbone.layer2.0.conv1.weight'] = torch.zeros(16, 8, 1, 3, 3)
    with pytest.raises(ValueError, match=re.escape(
            'layer2.0.conv1.weight -> layer2.0.conv1.conv.weight: '
            'checkpoint (16, 8, 1, 3, 3) vs ResNet3D (16, 8, 3, 3, 3)')):
        convert_svd_release_r3d18(official, logger='silent')


def test_unknown_and_missing_keys():
    official = mp3d_p3d_state(width=8)
    official['layer1.0.se.fc.weight'] = torch.zeros(4, 4)
    with pytest.raises(KeyError, match=re.escape(
            "cannot place key 'layer1.0.se.fc.weight' (4, 4)")):
        convert_mp3d_p3d(official, num_groups=4, logger='silent')
    official = mp3d_p3d_state(width=8)
    del official['layer2.1.norm_2.bias']
    with pytest.raises(KeyError, match='lacks 1 tensor.*'
                       'layer2.1.conv2.conv_s.gn.bias'):
        convert_mp3d_p3d(official, num_groups=4, logger='silent')
    official = cspr_resnet3d_state(width=8)
    official['neckless.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match="'neckless.weight'.*neither backbone "
                       'nor head'):
        convert_svd_release_r3d18(official, logger='silent')


# --------------------------------------------------------------------------
# the compared methods' _med1channel.pth files
# --------------------------------------------------------------------------
def _med1channel(ckpt):
    """CSPR's process_pretrained_weights.py: the state dict without
    ``module.``, the stem summed over its input channels, saved bare."""
    state = ckpt.get('state_dict', ckpt)
    state = OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in state.items())
    if state['conv1.weight'].size(1) == 3:
        state['conv1.weight'] = state['conv1.weight'].sum(1, keepdim=True)
    return state


MED1CHANNEL = {
    # r3d18_KM_200ep_med1channel.pth, resnet-18-kinetics_med1channel.pth
    'kinetics': lambda: layouts.kinetics_checkpoint(18, width=8),
    'kinetics-cvpr2018': lambda: layouts.kinetics_checkpoint(
        18, version='cvpr2018', width=8),
    # resnet18-5c106cde_med1channel.pth (torchvision) for I3D and ACS
    'i3d': lambda: layouts.resnet_layout(18, dims=2, width=8),
    'acs': lambda: layouts.resnet_layout(18, dims=2, width=8),
    # resnet_18_23dataset: one channel already
    'med3d': lambda: layouts.med3d_checkpoint(18, width=8),
}


@pytest.mark.parametrize('name', sorted(MED1CHANNEL))
def test_med1channel_files_convert_like_the_originals(name, tmp_path):
    original = MED1CHANNEL[name]()
    path = tmp_path / f'{name}_med1channel.pth'
    torch.save(_med1channel(original), path)
    kind = name.split('-')[0]
    converter = BASELINE_CONVERTERS[kind]
    state, report = converter(str(path), depth=18, logger='silent')
    expected, expected_report = converter(
        original.get('state_dict', original), depth=18, logger='silent')
    assert report['model'] == expected_report['model']
    assert list(state) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=1e-6)
    assert state['conv1.conv.weight'].size(1) == 1
    # the stem was summed already: no channel rule applied to it
    assert 'summed' not in report['adapted'].get('conv1.conv.weight', '')
    assert 'summed' in expected_report['adapted'].get(
        'conv1.conv.weight', 'summed')
