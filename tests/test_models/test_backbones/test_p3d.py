import doctest

import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import svd_mm.models.backbones.p3d as p3d_module
from svd_mm.models.backbones import P3D, ResNet3D
from svd_mm.models.backbones.p3d import (P3DBottleneck, PseudoConv3D,
                                         SliceMaxPool3D)
from svd_mm.models.backbones.resnet3d import Bottleneck3D
from tests.helpers import (Table2Classifier, all_zeros, check_norm_state,
                           is_block, table2_complexity)

DEPTHS = (63, 131)

# [kwargs, in_shape, (D, H, W) of each output]; the channels follow from the
# width (base_channels * 2**i * 4, the stem has base_channels).
SHAPE_CASES = [
    # pre-training mode: D=3 stays 3 in every stage
    [dict(out_indices=(0, 1, 2, 3)), (2, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 2, 3), (3, 1, 2)]],
    # parameter-free shortcut, same shapes
    [dict(out_indices=(1, 3), shortcut_type='A'), (1, 1, 3, 32, 48),
     [(3, 4, 6), (3, 1, 2)]],
    # the stem feature (before the max-pool) comes first
    [dict(with_stem_out=True), (1, 1, 3, 40, 24), [(3, 20, 12), (3, 2, 1)]],
    # DeepLesion by strided convolutions: depths 9, 5, 3, 1
    [dict(out_indices=(0, 1, 2, 3), slice_strides=(1, 2, 2, 3)),
     (1, 1, 9, 64, 48), [(9, 16, 12), (5, 8, 6), (3, 4, 3), (1, 2, 2)]],
    # DeepLesion by slice pooling at the end of stages 2-4: same depths
    [dict(out_indices=(0, 1, 2, 3), slice_pool_stages=(1, 2, 3)),
     (1, 1, 9, 64, 48), [(9, 16, 12), (5, 8, 6), (3, 4, 3), (1, 2, 2)]],
    # slice pooling: 7 -> 3 -> 1
    [dict(out_indices=(0, 1, 2), slice_pool_stages=(0, 1)),
     (1, 1, 7, 32, 48), [(3, 8, 12), (1, 4, 6), (1, 2, 3)]],
    # segmentation: full-resolution stem, D halved per stage
    [dict(out_indices=(0, 1, 2, 3), slice_strides=(1, 2, 2, 2),
          stem_stride=1, with_maxpool=False, with_stem_out=True),
     (1, 1, 8, 24, 40),
     [(8, 24, 40), (8, 24, 40), (4, 12, 20), (2, 6, 10), (1, 3, 5)]],
    # strided stem and max-pool along D, RGB volume input
    [dict(in_channels=3, out_indices=(0, ), stem_slice_stride=2,
          maxpool_slice_stride=2), (1, 3, 16, 32, 48), [(4, 8, 12)]],
    # T convolutions in every stage, factorised stem, dilated last stages
    [dict(out_indices=(0, 1, 2, 3), stage_with_slice_conv=(True, ) * 4,
          stem_with_slice_conv=True, strides=(1, 2, 1, 1),
          dilations=(1, 1, 2, 4)), (1, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 4, 6), (3, 4, 6)]],
    # fewer stages
    [dict(num_stages=2, strides=(1, 2), slice_strides=(1, 2),
          dilations=(1, 1), out_indices=(0, 1)), (1, 1, 5, 32, 48),
     [(5, 8, 12), (3, 4, 6)]],
]


def _expected_channels(model):
    channels = [model.base_channels] if model.with_stem_out else []
    channels += [model.base_channels * 2**i * 4 for i in model.out_indices]
    return channels


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, P3DBottleneck)]


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('kwargs,in_shape,out_dhw', SHAPE_CASES)
def test_p3d_output_shapes(depth, kwargs, in_shape, out_dhw):
    model = P3D(depth=depth, base_channels=4, **kwargs)
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(*in_shape))
    assert isinstance(outs, tuple)
    assert [o.shape for o in outs] == [
        torch.Size((in_shape[0], c) + dhw)
        for c, dhw in zip(_expected_channels(model), out_dhw)
    ]


@pytest.mark.parametrize('depth,stage_blocks',
                         [(63, (3, 4, 6, 3)), (131, (3, 4, 23, 3)),
                          (199, (3, 8, 36, 3))])
def test_p3d_structure_cycle_and_layer_count(depth, stage_blocks):
    model = P3D(depth=depth, base_channels=2)
    assert isinstance(model, ResNet3D)
    assert model.stage_with_slice_conv == (True, True, True, False)
    assert tuple(len(getattr(model, name))
                 for name in model.res_layers) == stage_blocks
    blocks = _blocks(model)
    assert all(type(m) is P3DBottleneck and is_block(m) for m in blocks)
    # the P3D blocks of stages 1-3 cycle A, B, C across stage boundaries
    num_p3d = sum(stage_blocks[:3])
    assert [m.structure for m in blocks[:num_p3d]] == [
        'ABC'[i % 3] for i in range(num_p3d)
    ]
    assert all(m.conv2.structure == m.structure for m in blocks)
    # the last stage is made of 2D residual units: S only
    assert [m.structure for m in blocks[num_p3d:]] == [None] * stage_blocks[3]
    assert all(m.conv2.conv_t is None for m in model.layer4)
    # the name counts the weighted layers of the main path (+1 for the fc)
    convs = [
        name for name, m in model.named_modules()
        if isinstance(m, nn.Conv3d) and 'downsample' not in name
    ]
    assert len(convs) + 1 == depth
    assert model.feat_dim == 2 * 8 * 4


def test_p3d_kernels_and_strides():
    model = P3D(
        depth=63,
        base_channels=2,
        slice_strides=(1, 2, 2, 3),
        stem_stride=2,
        stem_slice_stride=1)
    # stem: one 1x7x7 convolution
    stem = model.conv1
    assert isinstance(stem, PseudoConv3D) and stem.conv_t is None
    assert stem.conv_s.conv.kernel_size == (1, 7, 7)
    assert stem.conv_s.conv.stride == (1, 2, 2)
    assert stem.conv_s.conv.padding == (0, 3, 3)
    # layer2[0] is A: S strides along H/W, T along D
    conv2 = model.layer2[0].conv2
    assert conv2.structure == 'A'
    assert conv2.conv_s.conv.kernel_size == (1, 3, 3)
    assert conv2.conv_s.conv.stride == (1, 2, 2)
    assert conv2.conv_s.conv.padding == (0, 1, 1)
    assert conv2.conv_t.conv.kernel_size == (3, 1, 1)
    assert conv2.conv_t.conv.stride == (2, 1, 1)
    assert conv2.conv_t.conv.padding == (1, 0, 0)
    assert model.layer2[0].downsample.conv.stride == (2, 2, 2)
    # layer3[0] is B: both branches stride along every axis
    conv2 = model.layer3[0].conv2
    assert conv2.structure == 'B'
    assert conv2.conv_s.conv.stride == (2, 2, 2)
    assert conv2.conv_t.conv.stride == (2, 2, 2)
    # layer4 has no T: its S strides along D as well
    assert model.layer4[0].conv2.conv_s.conv.stride == (3, 2, 2)
    # the unstrided blocks pad D by 1 on every T
    assert all(m.conv2.conv_t.conv.padding == (1, 0, 0)
               and m.conv2.conv_t.conv.stride == (1, 1, 1)
               for m in model.layer3[1:])
    # a factorised stem on request
    model = P3D(depth=63, base_channels=2, stem_with_slice_conv=True)
    assert model.conv1.structure == 'A'
    assert model.conv1.conv_t.conv.kernel_size == (3, 1, 1)


@pytest.mark.parametrize('structure', ['A', 'B', 'C', None])
@pytest.mark.parametrize('stride,slice_stride', [(1, 1), (2, 2), (2, 3)])
def test_pseudo_conv3d_structures(structure, stride, slice_stride):
    conv = PseudoConv3D(
        4, 6, structure=structure, stride=stride, slice_stride=slice_stride)
    conv.eval()
    x = torch.randn(2, 4, 7, 10, 9)
    with torch.no_grad():
        out = conv(x)
        s = conv.conv_s(x)
        if structure == 'A':
            expected = conv.conv_t(s)
        elif structure == 'B':
            expected = s + conv.conv_t(x)
        elif structure == 'C':
            expected = s[:, :, ::slice_stride] + conv.conv_t(s)
        else:
            expected = s
    # the shape of a 3x3x3 convolution with padding 1 and these strides
    ref = nn.Conv3d(4, 6, 3, stride=(slice_stride, stride, stride),
                    padding=1)
    assert out.shape == ref(x).shape
    assert torch.allclose(out, expected)


def test_slice_max_pool():
    pool = SliceMaxPool3D()
    assert list(pool.parameters()) == []
    for d_in, d_out in [(9, 5), (5, 3), (3, 1), (7, 3), (1, 1), (2, 1),
                        (4, 2), (6, 3)]:
        x = torch.rand(2, 3, d_in, 5, 4)
        assert pool(x).shape == torch.Size([2, 3, d_out, 5, 4])
    # odd D: the output's centre slice pools the input's 3 centre slices
    x = torch.randn(1, 2, 5, 3, 3)
    assert torch.equal(pool(x)[:, :, 1], x[:, :, 1:4].amax(dim=2))
    x = torch.randn(1, 2, 3, 3, 3)
    assert torch.equal(pool(x)[:, :, 0], x.amax(dim=2))


def test_p3d_slice_pool_layout():
    model = P3D(depth=63, base_channels=2, slice_pool_stages=(1, 2))
    # the pool ends the stage, after blocks 0..n-1 which keep their keys
    assert isinstance(model.layer2.slice_pool, SliceMaxPool3D)
    assert isinstance(model.layer3[-1], SliceMaxPool3D)
    assert not hasattr(model.layer1, 'slice_pool')
    assert list(model.state_dict()) == list(
        P3D(depth=63, base_channels=2).state_dict())


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_p3d_frozen_stages(frozen_stages):
    model = P3D(depth=63, base_channels=4, frozen_stages=frozen_stages)
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
    mean = model.conv1.conv_s.bn.running_mean.clone()
    model(torch.rand(2, 1, 3, 16, 16))
    assert torch.equal(model.conv1.conv_s.bn.running_mean, mean)


def test_p3d_norm_eval():
    model = P3D(depth=63, base_channels=4, norm_eval=True)
    model.init_weights()
    model.train()
    assert check_norm_state(model.modules(), False)
    assert all(p.requires_grad for p in model.parameters())
    model = P3D(depth=63, base_channels=4, norm_eval=False)
    model.train()
    assert check_norm_state(model.modules(), True)


def test_p3d_init_weights():
    model = P3D(depth=63, base_channels=4)
    model.init_weights()
    blocks = _blocks(model)
    assert blocks and all(all_zeros(m.last_norm) for m in blocks)
    assert all(
        torch.all(m.conv2.conv_t.bn.weight == 1) for m in blocks
        if m.structure is not None)
    assert not all_zeros(model.layer1[0].conv2.conv_t.conv)
    model = P3D(depth=63, base_channels=4, zero_init_residual=False)
    model.init_weights()
    assert all(torch.all(m.last_norm.weight == 1) for m in _blocks(model))


def test_p3d_with_cp():
    model = P3D(depth=63, base_channels=4, with_cp=True)
    assert all(m.with_cp for m in _blocks(model))
    ref = P3D(depth=63, base_channels=4, with_cp=False)
    ref.load_state_dict(model.state_dict())
    model.eval()
    ref.eval()
    x = torch.rand(1, 1, 3, 16, 24, requires_grad=True)
    out = model(x)[0]
    assert torch.allclose(out, ref(x)[0])
    out.sum().backward()
    assert x.grad is not None


def test_p3d_registry_and_doctest():
    model = MODELS.build(dict(type='P3D', depth=63, base_channels=2))
    assert isinstance(model, P3D)
    result = doctest.testmod(p3d_module)
    assert result.attempted > 0 and result.failed == 0


def test_p3d_bad_arguments():
    with pytest.raises(KeyError):
        # depth must be a key of arch_settings (50 is ResNet3D's)
        P3D(depth=50)

    with pytest.raises(ValueError, match='stage_with_slice_conv'):
        # one flag per stage
        P3D(depth=63, stage_with_slice_conv=(True, True, True))

    with pytest.raises(ValueError, match='slice_pool_stages'):
        # stage index 4 does not exist
        P3D(depth=63, slice_pool_stages=(4, ))

    with pytest.raises(ValueError, match='slice_strides'):
        # one D stride per stage (checked by ResNet3D)
        P3D(depth=63, slice_strides=(1, 2, 2))

    with pytest.raises(ValueError, match='frozen_stages'):
        # cannot freeze more stages than exist
        P3D(depth=63, frozen_stages=5)

    with pytest.raises(ValueError, match='structure'):
        # only the paper's three structures (or None)
        PseudoConv3D(4, 4, structure='D')

    with pytest.raises(ValueError, match='arch'):
        # the paper's P3D or MP3D's
        P3D(depth=63, arch='modified')

    with pytest.raises(ValueError, match='style'):
        # the stride sits in conv2 (pytorch) or conv1 (caffe)
        P3DBottleneck(8, 2, style='tf')


def test_p3d_mp3d_arch():
    """MP3D's P3D: strides in the first 1x1x1 convolution, T convolutions
    in every stage, a 1x3x3 stem max-pool and MP3D's D pools 9 -> 5 -> 3
    -> 1; the default P3D is unchanged."""
    model = P3D(depth=63, arch='mp3d', base_channels=4,
                norm_cfg=dict(type='GN', num_groups=2),
                out_indices=(0, 1, 2, 3)).eval()
    blocks = [m for m in model.modules() if isinstance(m, P3DBottleneck)]
    assert len(blocks) == 16
    assert [b.structure for b in blocks] == list('ABC' * 5 + 'A')
    assert all(b.style == 'caffe' for b in blocks)
    first = model.layer2[0]
    assert first.conv1.conv.stride == (1, 2, 2)
    assert first.conv2.conv_s.conv.stride == (1, 1, 1)
    assert first.conv2.conv_t.conv.stride == (1, 1, 1)
    assert first.downsample.conv.stride == (1, 2, 2)
    assert model.maxpool.kernel_size == (1, 3, 3)
    pools = [getattr(getattr(model, f'layer{i}'), 'slice_pool', None)
             for i in (1, 2, 3, 4)]
    assert [p.stride if p else None for p in pools] == [(2, 1, 1),
                                                        (2, 1, 1), 1, None]
    with torch.no_grad():
        outs = model(torch.rand(1, 1, 9, 64, 48))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 5, 16, 12),
                                              (1, 32, 3, 8, 6),
                                              (1, 64, 1, 4, 3),
                                              (1, 128, 1, 2, 2)]
    # without the pools (pre-train mode) D stays
    model = P3D(depth=63, arch='mp3d', base_channels=4, slice_pool_stages=(),
                norm_cfg=dict(type='GN', num_groups=2)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3, 32, 32))[0].shape[2] == 3
    # the default arch: pytorch style, 2D units in stage 4, 3x3x3 pool
    default = P3D(depth=63, base_channels=4)
    assert default.layer2[0].conv1.conv.stride == (1, 1, 1)
    assert default.layer2[0].conv2.conv_s.conv.stride == (1, 2, 2)
    assert default.layer4[0].structure is None
    assert default.maxpool.kernel_size == 3


def test_p3d_bad_inputs():
    model = P3D(depth=63, base_channels=2)
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        # a 2D image must be turned into a volume first
        model(torch.rand(1, 1, 32, 32))

    with pytest.raises(ValueError, match='in_channels=1.*C=3'):
        # an RGB volume into a one-channel backbone
        model(torch.rand(1, 3, 3, 32, 32))


def test_p3d63_complexity_cheaper_than_resnet3d50():
    params, flops = table2_complexity(P3D(depth=63))
    # regression guard: measured with mmengine (FLOPs = multiply-adds)
    assert params / 1e6 == pytest.approx(26.968, rel=0.005)
    assert flops / 1e9 == pytest.approx(13.605, rel=0.005)
    # the paper's claim: cheaper than the full 3D network of the same layout
    r50_params, r50_flops = table2_complexity(ResNet3D(depth=50))
    assert params < r50_params and flops < r50_flops
    # what P3D-63 adds to the 2D ResNet-50 layout: 13 T convolutions
    # (planes * planes * 3 weights) with their norms (2 * planes)
    without_t = P3D(depth=63, stage_with_slice_conv=(False, ) * 4)
    added = sum(n * (planes * planes * 3 + 2 * planes)
                for planes, n in ((64, 3), (128, 4), (256, 6)))
    assert params - _num_params(Table2Classifier(without_t)) == added


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_bottleneck_subclass():
    block = P3DBottleneck(8, 2, structure='C')
    assert isinstance(block, Bottleneck3D)
    x = torch.rand(1, 8, 3, 5, 6)
    assert block(x).shape == torch.Size([1, 8, 3, 5, 6])


def test_p3d63_mp3d_arch_complexity():
    # the README's Models row of MP3D's P3D-63 (without its D pools, which
    # need 9 slices): T convolutions in all four stages
    params, flops = table2_complexity(
        P3D(depth=63, arch='mp3d', slice_pool_stages=()))
    assert params / 1e6 == pytest.approx(29.33, abs=0.005)
    assert flops / 1e9 == pytest.approx(13.26, abs=0.005)
