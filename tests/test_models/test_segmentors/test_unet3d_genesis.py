"""UNet3DGenesis: the Models Genesis 3D U-Net, its checkpoint layout
(built from the documented key names and shapes) and mmseg use."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample

import svd_mm  # noqa: F401
from svd_mm.models.segmentors import UNet3DGenesis
from svd_mm.models.utils import convert_genesis
from svd_mm.structures import VoxelData
from tests.helpers.tools import load_script


def _load_layouts():
    return load_script(
        Path(__file__).parents[1] / 'test_utils' / 'baseline_layouts.py')


layouts = _load_layouts()


def genesis_reference(sd, x):
    """Models Genesis' UNet3D forward (eval-mode norms, no sigmoid) on its
    own (x, y, z) arrays and raw state dict."""

    def lu_conv(prefix, x):
        x = F.conv3d(
            x,
            sd[f'{prefix}.conv1.weight'],
            sd[f'{prefix}.conv1.bias'],
            padding=1)
        x = F.batch_norm(x, sd[f'{prefix}.bn1.running_mean'],
                         sd[f'{prefix}.bn1.running_var'],
                         sd[f'{prefix}.bn1.weight'], sd[f'{prefix}.bn1.bias'])
        return F.relu(x)

    skips = []
    for name in ('down_tr64', 'down_tr128', 'down_tr256', 'down_tr512'):
        x = lu_conv(f'{name}.ops.1', lu_conv(f'{name}.ops.0', x))
        skips.append(x)
        if name != 'down_tr512':
            x = F.max_pool3d(x, 2)
    for name, skip in zip(('up_tr256', 'up_tr128', 'up_tr64'),
                          reversed(skips[:3])):
        x = F.conv_transpose3d(
            x,
            sd[f'{name}.up_conv.weight'],
            sd[f'{name}.up_conv.bias'],
            stride=2)
        x = torch.cat((x, skip), dim=1)
        x = lu_conv(f'{name}.ops.1', lu_conv(f'{name}.ops.0', x))
    return F.conv3d(x, sd['out_tr.final_conv.weight'],
                    sd['out_tr.final_conv.bias'])


@pytest.fixture(scope='module')
def chest_ct(tmp_path_factory):
    """A ``Genesis_Chest_CT.pt`` of the released layout and sizes."""
    ckpt = layouts.genesis_checkpoint(seed=3)
    path = tmp_path_factory.mktemp('genesis') / 'Genesis_Chest_CT.pt'
    torch.save(ckpt, path)
    raw = {k[len('module.'):]: v for k, v in ckpt['state_dict'].items()}
    return str(path), raw


@pytest.fixture(scope='module')
def pretrained(chest_ct):
    path, _ = chest_ct
    model = UNet3DGenesis(
        num_classes=2,
        out_channels=1,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True),
        init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    return model.eval()


def test_chest_ct_checkpoint_loads_strict(chest_ct, pretrained):
    path, raw = chest_ct
    expected, _ = convert_genesis(raw, logger='silent')
    state = pretrained.state_dict()
    model_keys = [
        k for k in state if k.startswith(('backbone.', 'decode_head.'))
    ]
    # every tensor of the network comes from the checkpoint, and back
    assert sorted(model_keys) == sorted(expected)
    for key in model_keys:
        assert torch.equal(state[key], expected[key]), key
    assert sum(p.numel() for p in pretrained.parameters()) == sum(
        v.numel() for k, v in raw.items()
        if 'running' not in k and 'num_batches' not in k)
    # the released network: 19.07 M parameters
    assert sum(p.numel() for p in pretrained.parameters()) == 19073665

    info = pretrained.load_genesis_weights(path)
    assert info == dict(loaded=len(model_keys), dropped=[], adapted=[])


def test_forward_on_genesis_cubes(pretrained):
    """The (N, 1, 64, 64, 32) cubes of Models Genesis give logits of the
    same size."""
    with torch.no_grad():
        logits = pretrained(torch.rand(1, 1, 64, 64, 32), mode='tensor')
    assert logits.shape == torch.Size([1, 1, 64, 64, 32])
    assert torch.isfinite(logits).all()


def test_matches_the_original_network_on_permuted_axes(chest_ct, pretrained):
    """UNet3DGenesis on a (D, H, W) = (z, y, x) volume equals Models
    Genesis on the (x, y, z) array of the same volume."""
    _, raw = chest_ct
    x_xyz = torch.rand(2, 1, 24, 16, 8)
    with torch.no_grad():
        expected = genesis_reference(raw, x_xyz).permute(0, 1, 4, 3, 2)
        logits = pretrained(x_xyz.permute(0, 1, 4, 3, 2), mode='tensor')
    assert logits.shape == torch.Size([2, 1, 8, 16, 24])
    assert expected.std() > 0.1
    err = (logits - expected).abs().max() / expected.abs().max()
    assert err < 1e-5, err


def test_converted_checkpoint_loads_unchanged(chest_ct, pretrained, tmp_path):
    """A checkpoint already in UNet3DGenesis' layout (convert_baseline.py
    output) is not permuted again."""
    _, raw = chest_ct
    converted, _ = convert_genesis(raw, logger='silent')
    path = tmp_path / 'genesis_converted.pth'
    torch.save(dict(state_dict=converted, meta=dict(type='genesis')), path)
    model = UNet3DGenesis(num_classes=2, out_channels=1)
    model.load_genesis_weights(str(path))
    for key, value in converted.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_other_classes_keep_a_new_output_conv(chest_ct):
    path, raw = chest_ct
    model = UNet3DGenesis(
        num_classes=3, init_cfg=dict(type='Pretrained', checkpoint=path))
    init = model.decode_head.conv_seg.weight.clone()
    model.init_weights()
    assert model.decode_head.conv_seg.weight.shape == torch.Size(
        [3, 64, 1, 1, 1])
    # PyTorch's initialization (as Models Genesis), not the checkpoint's
    assert torch.equal(model.decode_head.conv_seg.weight, init)
    assert torch.equal(model.backbone.up_tr64.ops[1].conv1.bias,
                       raw['up_tr64.ops.1.conv1.bias'])
    info = model.load_genesis_weights(path)
    assert info['dropped'] == [
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'
    ]


def test_two_channel_input_adapts_the_first_conv(tmp_path):
    raw = layouts.genesis_layout(base=4)
    path = tmp_path / 'genesis_b4.pt'
    torch.save(dict(state_dict=raw), path)
    model = UNet3DGenesis(num_classes=2, in_channels=2, base_channels=4)
    info = model.load_genesis_weights(str(path))
    assert info['adapted'] == ['backbone.down_tr64.ops.0.conv1.weight']
    first = raw['down_tr64.ops.0.conv1.weight'].permute(0, 1, 4, 3, 2)
    weight = model.backbone.down_tr64.ops[0].conv1.weight
    assert weight.shape == torch.Size([4, 2, 3, 3, 3])
    torch.testing.assert_close(weight, first.repeat(1, 2, 1, 1, 1) / 2)


def test_prelu_variant_loads(tmp_path):
    """Models Genesis' act='prelu' adds one slope per channel."""
    raw = layouts.genesis_layout(base=4, act='prelu')
    path = tmp_path / 'genesis_prelu.pt'
    torch.save(dict(state_dict=raw), path)
    model = UNet3DGenesis(
        num_classes=2,
        out_channels=1,
        base_channels=4,
        act_cfg=dict(type='PReLU'))
    info = model.load_genesis_weights(str(path))
    assert info['loaded'] == len(raw)
    assert model.backbone.up_tr64.ops[1].activation.weight.shape == \
        torch.Size([8])


def test_load_errors(tmp_path):
    small = tmp_path / 'genesis_b4.pt'
    torch.save(dict(state_dict=layouts.genesis_layout(base=4)), small)
    # a checkpoint of another width
    with pytest.raises(
            ValueError,
            match=r'backbone\.down_tr64\.ops\.0\.conv1\.weight: '
            r'checkpoint \(4, 1, 3, 3, 3\) vs model '
            r'\(8, 1, 3, 3, 3\)'):
        UNet3DGenesis(
            num_classes=2, base_channels=8).load_genesis_weights(str(small))
    # a tensor missing from a converted checkpoint
    converted, _ = convert_genesis(
        layouts.genesis_layout(base=4), logger='silent')
    del converted['backbone.up_tr128.ops.0.bn1.running_mean']
    partial = tmp_path / 'partial.pth'
    torch.save(dict(state_dict=converted), partial)
    with pytest.raises(KeyError, match=r'up_tr128\.ops\.0\.bn1\.running_mean'):
        UNet3DGenesis(
            num_classes=2, base_channels=4).load_genesis_weights(str(partial))
    # a missing file
    with pytest.raises(FileNotFoundError, match='nothing.pt'):
        UNet3DGenesis(
            num_classes=2, base_channels=4).load_genesis_weights(
                str(tmp_path / 'nothing.pt'))


def test_bad_inputs():
    model = UNet3DGenesis(num_classes=2, base_channels=4).eval()
    # D, H and W must be multiples of 8 (three max-pools)
    with pytest.raises(ValueError, match=r'multiples of 8.*\(1, 1, 12, 16'):
        model(torch.rand(1, 1, 12, 16, 16), mode='tensor')
    # one input channel
    with pytest.raises(ValueError, match=r'\(N, 1, D, H, W\)'):
        model(torch.rand(1, 2, 8, 16, 16), mode='tensor')
    # test_cfg is checked as in EncoderDecoder3D
    with pytest.raises(ValueError, match='test_cfg.mode'):
        UNet3DGenesis(num_classes=2, test_cfg=dict(mode='grid'))


def _samples(labels):
    return [
        SegDataSample(
            gt_sem_seg=VoxelData(data=label[None]),
            metainfo=dict(
                img_shape=tuple(label.shape), ori_shape=tuple(label.shape)))
        for label in labels
    ]


def test_built_from_an_mmseg_config_trains_and_predicts():
    from mmseg.registry import MODELS
    cfg = dict(
        type='UNet3DGenesis',
        num_classes=2,
        base_channels=4,
        data_preprocessor=dict(
            type='SegVolumeDataPreprocessor', mean=[0.], std=[1.]),
        test_cfg=dict(mode='slide', crop_size=(8, 16, 16), stride=(8, 8, 8)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.init_weights()
    torch.manual_seed(0)
    inputs = torch.rand(2, 1, 8, 16, 24)
    labels = (inputs[:, 0] > 0.5).long()
    losses = model.loss(inputs, _samples(labels))
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    assert model.backbone.down_tr64.ops[0].conv1.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs[:1], _samples(labels[:1]))
    assert results[0].pred_sem_seg.data.shape == torch.Size([1, 8, 16, 24])
    assert results[0].seg_logits.data.shape == torch.Size([2, 8, 16, 24])
