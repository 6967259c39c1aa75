import doctest

import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch.nn.modules import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

import svd_mm.models.backbones.resnet3d as resnet3d_module
from svd_mm.models.backbones import ResNet3D
from svd_mm.models.backbones.resnet3d import (BasicBlock3D, Bottleneck3D,
                                              ZeroPadShortcut3D)
from tests.helpers import (all_zeros, check_norm_state, is_block, is_norm,
                           table2_complexity)

DEPTHS = (18, 34, 50)

# [kwargs, in_shape, (D, H, W) of each output]; the channels follow from the
# depth (base_channels * 2**i * expansion, the stem has base_channels).
SHAPE_CASES = [
    # pre-training mode: D=3 stays 3 in every stage
    [dict(out_indices=(0, 1, 2, 3)), (2, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 2, 3), (3, 1, 2)]],
    # parameter-free shortcut, same shapes
    [dict(out_indices=(0, 1, 2, 3), shortcut_type='A'), (2, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 2, 3), (3, 1, 2)]],
    # the stem feature (before the max-pool) comes first
    [dict(with_stem_out=True), (2, 1, 3, 32, 48), [(3, 16, 24), (3, 1, 2)]],
    # DeepLesion fine-tuning: depths 9, 5, 3, 1
    [dict(out_indices=(0, 1, 2, 3), slice_strides=(1, 2, 2, 3)),
     (1, 1, 9, 64, 64), [(9, 16, 16), (5, 8, 8), (3, 4, 4), (1, 2, 2)]],
    # segmentation: full-resolution stem for a U-Net decoder
    [dict(out_indices=(0, 1, 2, 3), slice_strides=(1, 2, 2, 2),
          stem_stride=1, with_maxpool=False, with_stem_out=True),
     (1, 1, 8, 24, 40),
     [(8, 24, 40), (8, 24, 40), (4, 12, 20), (2, 6, 10), (1, 3, 5)]],
    # strided stem and max-pool along D
    [dict(out_indices=(0, ), stem_slice_stride=2, maxpool_slice_stride=2),
     (1, 1, 16, 32, 48), [(4, 8, 12)]],
    # RGB volume input
    [dict(in_channels=3, out_indices=(1, 2)), (1, 3, 5, 32, 40),
     [(5, 4, 5), (5, 2, 3)]],
    # dilated stages keep the resolution
    [dict(out_indices=(0, 1, 2, 3), strides=(1, 2, 1, 1),
          dilations=(1, 1, 2, 4)), (1, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 4, 6), (3, 4, 6)]],
    # fewer stages
    [dict(num_stages=2, strides=(1, 2), slice_strides=(1, 1),
          dilations=(1, 1), out_indices=(0, 1)), (1, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6)]],
]


def _expected_channels(model):
    channels = [model.base_channels] if model.with_stem_out else []
    channels += [
        model.base_channels * 2**i * model.block.expansion
        for i in model.out_indices
    ]
    return channels


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('kwargs,in_shape,out_dhw', SHAPE_CASES)
def test_resnet3d_output_shapes(depth, kwargs, in_shape, out_dhw):
    model = ResNet3D(depth=depth, base_channels=4, **kwargs)
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(*in_shape))
    assert isinstance(outs, tuple)
    channels = _expected_channels(model)
    assert [o.shape for o in outs] == [
        torch.Size((in_shape[0], c) + dhw)
        for c, dhw in zip(channels, out_dhw)
    ]


@pytest.mark.parametrize('depth,block,stage_blocks',
                         [(18, BasicBlock3D, (2, 2, 2, 2)),
                          (34, BasicBlock3D, (3, 4, 6, 3)),
                          (50, Bottleneck3D, (3, 4, 6, 3)),
                          (101, Bottleneck3D, (3, 4, 23, 3))])
def test_resnet3d_structure(depth, block, stage_blocks):
    model = ResNet3D(depth=depth, base_channels=2)
    assert model.res_layers == ['layer1', 'layer2', 'layer3', 'layer4']
    assert tuple(len(getattr(model, name))
                 for name in model.res_layers) == stage_blocks
    assert all(
        type(m) is block for name in model.res_layers
        for m in getattr(model, name))
    assert model.feat_dim == 2 * 8 * block.expansion
    # stem: 7x7x7, stride (1, 2, 2), padding 3 on every axis
    assert model.conv1.conv.kernel_size == (7, 7, 7)
    assert model.conv1.conv.stride == (1, 2, 2)
    assert model.conv1.conv.padding == (3, 3, 3)
    assert model.maxpool.stride == (1, 2, 2)
    # only the first block of a stage strides, on its 3x3x3 conv
    strided = model.layer2[0].conv1 if block is BasicBlock3D \
        else model.layer2[0].conv2
    assert strided.conv.kernel_size == (3, 3, 3)
    assert strided.conv.stride == (1, 2, 2)
    assert strided.conv.padding == (1, 1, 1)


def test_resnet3d_strides_and_dilations_per_axis():
    model = ResNet3D(
        depth=18,
        base_channels=2,
        slice_strides=(1, 2, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        stem_stride=1,
        stem_slice_stride=2,
        maxpool_slice_stride=2)
    assert model.conv1.conv.stride == (2, 1, 1)
    assert model.maxpool.stride == (2, 2, 2)
    assert model.layer2[0].conv1.conv.stride == (2, 2, 2)
    assert model.layer4[0].conv1.conv.stride == (3, 1, 1)
    assert model.layer4[0].downsample.conv.stride == (3, 1, 1)
    assert model.layer4[1].conv1.conv.stride == (1, 1, 1)
    # padding equals the dilation on every axis
    assert model.layer3[0].conv1.conv.dilation == (2, 2, 2)
    assert model.layer3[0].conv1.conv.padding == (2, 2, 2)
    assert model.layer4[1].conv2.conv.dilation == (4, 4, 4)
    assert model.layer4[1].conv2.conv.padding == (4, 4, 4)
    assert ResNet3D(depth=18, with_maxpool=False).maxpool is None


@pytest.mark.parametrize('depth', DEPTHS)
def test_resnet3d_shortcut_types(depth):
    model_a = ResNet3D(depth=depth, base_channels=4, shortcut_type='A')
    model_b = ResNet3D(depth=depth, base_channels=4, shortcut_type='B')
    n_a = sum(p.numel() for p in model_a.parameters())
    n_b = sum(p.numel() for p in model_b.parameters())
    # B adds one 1x1x1 conv + norm per projection shortcut, A none
    projections = [
        m.downsample for m in model_b.modules()
        if is_block(m) and m.downsample is not None
    ]
    assert n_b - n_a == sum(
        p.numel() for m in projections for p in m.parameters())
    assert n_b > n_a
    shortcuts_a = [
        m.downsample for m in model_a.modules()
        if is_block(m) and m.downsample is not None
    ]
    assert len(shortcuts_a) == len(projections)
    assert all(isinstance(m, ZeroPadShortcut3D) for m in shortcuts_a)
    # BasicBlock stage 1 needs no shortcut; Bottleneck widens 4 -> 16
    expected = 3 if depth < 50 else 4
    assert len(shortcuts_a) == expected


def test_resnet3d_shortcut_a_values():
    shortcut = ZeroPadShortcut3D(2, 5, stride=(2, 2, 1))
    assert list(shortcut.parameters()) == []
    x = torch.rand(1, 2, 5, 4, 3)
    out = shortcut(x)
    assert out.shape == torch.Size([1, 5, 3, 2, 3])
    assert torch.equal(out[:, :2], x[:, :, ::2, ::2, :])
    assert torch.equal(out[:, 2:], torch.zeros(1, 3, 3, 2, 3))


def test_resnet3d_basic_block_identity():
    block = BasicBlock3D(4, 4)
    assert block.downsample is None
    assert block.conv1.conv.kernel_size == (3, 3, 3)
    x = torch.rand(2, 4, 3, 5, 6)
    assert block(x).shape == torch.Size([2, 4, 3, 5, 6])


def test_resnet3d_group_norm():
    model = ResNet3D(
        depth=18,
        base_channels=4,
        norm_cfg=dict(type='GN', num_groups=2, requires_grad=True),
        out_indices=(0, 3))
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms and all(isinstance(m, GroupNorm) for m in norms)
    model.init_weights()
    model.train()
    outs = model(torch.rand(2, 1, 3, 16, 24))
    assert [o.shape for o in outs] == [
        torch.Size([2, 4, 3, 4, 6]),
        torch.Size([2, 32, 3, 1, 1])
    ]


def test_resnet3d_sync_bn_builds():
    # SyncBN needs a process group to run, so only the build is checked
    model = ResNet3D(
        depth=50, base_channels=2, norm_cfg=dict(type='SyncBN'))
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)


def test_resnet3d_init_weights():
    model = ResNet3D(depth=18, base_channels=4)
    model.init_weights()
    for m in model.modules():
        if is_block(m):
            assert all_zeros(m.last_norm)
            assert torch.all(m.conv1.norm.weight == 1)
    assert torch.all(model.conv1.norm.weight == 1)
    assert not all_zeros(model.conv1.conv)

    model = ResNet3D(depth=50, base_channels=4, zero_init_residual=False)
    model.init_weights()
    assert all(
        torch.all(m.last_norm.weight == 1) for m in model.modules()
        if is_block(m))


def test_resnet3d_weight_transfer_import():
    # the Pretrained path of init_weights imports this lazily
    import svd_mm.models.utils.weight_transfer as module
    assert callable(module.load_backbone_weights)


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_resnet3d_frozen_stages(frozen_stages):
    model = ResNet3D(
        depth=18, base_channels=4, frozen_stages=frozen_stages)
    model.init_weights()
    model.train()
    frozen = [model.conv1] + [
        getattr(model, f'layer{i}') for i in range(1, frozen_stages + 1)
    ]
    trainable = [
        getattr(model, f'layer{i}') for i in range(frozen_stages + 1, 5)
    ]
    for m in frozen:
        assert all(not p.requires_grad for p in m.parameters())
        assert check_norm_state(m.modules(), False)
    for m in trainable:
        assert all(p.requires_grad for p in m.parameters())
        assert check_norm_state(m.modules(), True)
    # frozen norms keep their statistics through a training forward
    mean = model.conv1.norm.running_mean.clone()
    model(torch.rand(2, 1, 3, 16, 16))
    assert torch.equal(model.conv1.norm.running_mean, mean)


def test_resnet3d_norm_eval():
    model = ResNet3D(depth=18, base_channels=4, norm_eval=True)
    model.init_weights()
    model.train()
    assert check_norm_state(model.modules(), False)
    assert all(p.requires_grad for p in model.parameters())
    model = ResNet3D(depth=18, base_channels=4, norm_eval=False)
    model.train()
    assert check_norm_state(model.modules(), True)
    model.eval()
    assert check_norm_state(model.modules(), False)


def test_resnet3d_with_cp():
    model = ResNet3D(depth=50, base_channels=4, with_cp=True)
    assert all(m.with_cp for m in model.modules() if is_block(m))
    ref = ResNet3D(depth=50, base_channels=4, with_cp=False)
    ref.load_state_dict(model.state_dict())
    model.eval()
    ref.eval()
    x = torch.rand(1, 1, 3, 16, 24, requires_grad=True)
    out = model(x)[0]
    assert torch.allclose(out, ref(x)[0])
    out.sum().backward()
    assert x.grad is not None


def test_resnet3d_registry():
    model = MODELS.build(dict(type='ResNet3D', depth=18, base_channels=2))
    assert isinstance(model, ResNet3D)


def test_resnet3d_doctest():
    result = doctest.testmod(resnet3d_module)
    assert result.attempted > 0 and result.failed == 0


def test_resnet3d_bad_arguments():
    with pytest.raises(KeyError):
        # depth must be a key of arch_settings
        ResNet3D(depth=19)

    with pytest.raises(ValueError, match='slice_strides'):
        # one D stride per stage
        ResNet3D(depth=18, slice_strides=(1, 2, 2))

    with pytest.raises(ValueError, match='strides'):
        # one H/W stride per stage
        ResNet3D(depth=18, strides=(1, 2))

    with pytest.raises(ValueError, match='dilations'):
        # one dilation per stage
        ResNet3D(depth=18, dilations=(1, 1, 1, 1, 1))

    with pytest.raises(ValueError, match='out_indices'):
        # stage index 4 does not exist
        ResNet3D(depth=18, out_indices=(4, ))

    with pytest.raises(ValueError, match='num_stages'):
        # at most 4 stages
        ResNet3D(depth=18, num_stages=5)

    with pytest.raises(ValueError, match='shortcut_type'):
        # only 'A' and 'B'
        ResNet3D(depth=18, shortcut_type='C')

    with pytest.raises(ValueError, match='frozen_stages'):
        # cannot freeze more stages than exist
        ResNet3D(depth=18, frozen_stages=5)


def test_resnet3d_bad_inputs():
    model = ResNet3D(depth=18, base_channels=2)
    with pytest.raises(
            ValueError, match=r'\(N, C, D, H, W\).*\(1, 1, 32, 32\)'):
        # a 2D image must be turned into a volume first
        model(torch.rand(1, 1, 32, 32))

    with pytest.raises(ValueError, match='in_channels=1.*C=3'):
        # an RGB volume into a one-channel backbone
        model(torch.rand(1, 3, 3, 32, 32))


@pytest.mark.parametrize('depth,params_m,gflops', [(18, 33.67, 15.99),
                                                   (34, 63.98, 32.65),
                                                   (50, 48.20, 23.93)])
def test_resnet3d_complexity_table2(depth, params_m, gflops):
    params, flops = table2_complexity(ResNet3D(depth=depth))
    assert params / 1e6 == pytest.approx(params_m, rel=0.005)
    assert flops / 1e9 == pytest.approx(gflops, rel=0.03)


def test_check_norm_state_helper():
    bn = nn.BatchNorm3d(2)
    bn.eval()
    assert check_norm_state([bn, nn.GroupNorm(1, 2)], False)
    assert not check_norm_state([bn], True)
    assert isinstance(bn, _BatchNorm) and is_norm(bn)


@pytest.mark.parametrize('backbone_type,kwargs', [
    ('ResNet3D', dict(depth=18)),
    ('ResNet3D', dict(depth=50, shortcut_type='A')),
    ('ResNet3DV1c', dict(depth=18)),
    ('P3D', dict(depth=63)),
])
@pytest.mark.parametrize('stages', [1, 2, 4])
def test_resnet3d_channels_last_stages_equal_default(backbone_type, kwargs,
                                                     stages):
    """Same weights, same outputs and gradients in either layout; the
    channels-last stages really run channels-last (the C=1 input too) and
    the features handed on are in the default layout."""
    cfg = dict(
        type=backbone_type,
        base_channels=8,
        out_indices=(0, 1, 2, 3),
        with_stem_out=True,
        **kwargs)
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    plain.init_weights()
    fast = MODELS.build(dict(cfg, channels_last_stages=stages))
    fast.load_state_dict(plain.state_dict())
    plain.train()
    fast.train()

    # the layout each stage (and the stem's first conv) is handed
    layouts = {}
    stem_conv = next(m for m in fast.modules() if isinstance(m, nn.Conv3d))
    for name in ['stem'] + fast.res_layers:
        module = stem_conv if name == 'stem' else getattr(fast, name)
        module.register_forward_pre_hook(
            lambda m, args, name=name: layouts.__setitem__(
                name, args[0].stride()))
    x = torch.rand(2, 1, 3, 32, 32)
    x_plain = x.clone().requires_grad_()
    x_fast = x.clone().requires_grad_()
    out_plain = plain(x_plain)
    out_fast = fast(x_fast)
    assert len(out_plain) == len(out_fast) == 5
    for a, b in zip(out_plain, out_fast):
        assert b.is_contiguous()
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    sum(o.square().mean() for o in out_plain).backward()
    sum(o.square().mean() for o in out_fast).backward()
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-4,
                               atol=1e-6)
    grads_plain = dict(plain.named_parameters())
    for name, p in fast.named_parameters():
        torch.testing.assert_close(
            p.grad, grads_plain[name].grad, rtol=1e-3, atol=1e-5, msg=name)

    # the stem reads a channels-last copy of the one-channel input
    assert layouts['stem'][1] == 1 and layouts['stem'][2] != 1
    for i, name in enumerate(fast.res_layers):
        assert (layouts[name][1] == 1) == (i < stages), name
    # weights follow the same split
    for i, name in enumerate(fast.res_layers):
        conv = next(m for m in getattr(fast, name).modules()
                    if isinstance(m, nn.Conv3d) and m.in_channels > 1
                    and m.weight[0, 0].numel() > 1)
        assert (conv.weight.stride(1) == 1) == (i < stages), name


def test_resnet3d_channels_last_stages_range():
    with pytest.raises(ValueError, match=r'channels_last_stages must be in'):
        ResNet3D(depth=18, channels_last_stages=5)
    with pytest.raises(ValueError, match=r'channels_last_stages must be in'):
        ResNet3D(
            depth=18,
            num_stages=2,
            strides=(1, 2),
            slice_strides=(1, 1),
            dilations=(1, 1),
            out_indices=(1, ),
            channels_last_stages=3)
