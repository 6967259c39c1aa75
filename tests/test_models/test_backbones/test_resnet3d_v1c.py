import doctest

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS
from torch.nn.modules import GroupNorm

import svd_mm.models.backbones.resnet3d_v1c as resnet3d_v1c_module
from svd_mm.models.backbones import ResNet3D, ResNet3DV1c
from tests.helpers import check_norm_state, is_norm, table2_complexity

# [kwargs, in_shape, (D, H, W) of each output]; channels follow from depth
SHAPE_CASES = [
    # pre-training mode: D=3 stays 3 in every stage
    [dict(out_indices=(0, 1, 2, 3)), (2, 1, 3, 32, 48),
     [(3, 8, 12), (3, 4, 6), (3, 2, 3), (3, 1, 2)]],
    # DeepLesion fine-tuning: depths 9, 5, 3, 1
    [dict(out_indices=(0, 1, 2, 3), slice_strides=(1, 2, 2, 3)),
     (1, 1, 9, 64, 48), [(9, 16, 12), (5, 8, 6), (3, 4, 3), (1, 2, 2)]],
    # segmentation: full-resolution deep stem for a U-Net decoder
    [dict(out_indices=(0, 3), slice_strides=(1, 2, 2, 2), stem_stride=1,
          with_maxpool=False, with_stem_out=True), (1, 1, 8, 24, 40),
     [(8, 24, 40), (8, 24, 40), (1, 3, 5)]],
    # strided stem along D
    [dict(stem_slice_stride=2, in_channels=3), (1, 3, 6, 32, 48),
     [(3, 1, 2)]],
]


@pytest.mark.parametrize('depth', (18, 34, 50))
@pytest.mark.parametrize('kwargs,in_shape,out_dhw', SHAPE_CASES)
def test_resnet3d_v1c_output_shapes(depth, kwargs, in_shape, out_dhw):
    model = ResNet3DV1c(depth=depth, base_channels=4, **kwargs)
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(*in_shape))
    channels = [4] if model.with_stem_out else []
    channels += [4 * 2**i * model.block.expansion for i in model.out_indices]
    assert [o.shape for o in outs] == [
        torch.Size((in_shape[0], c) + dhw)
        for c, dhw in zip(channels, out_dhw)
    ]


def test_resnet3d_v1c_stem():
    model = ResNet3DV1c(
        depth=18,
        in_channels=3,
        base_channels=8,
        stem_stride=2,
        stem_slice_stride=2)
    assert isinstance(model, ResNet3D)
    assert not hasattr(model, 'conv1')
    assert isinstance(model.stem, nn.Sequential) and len(model.stem) == 3
    assert all(isinstance(m, ConvModule) for m in model.stem)
    convs = [m.conv for m in model.stem]
    assert [(c.in_channels, c.out_channels)
            for c in convs] == [(3, 4), (4, 4), (4, 8)]
    assert all(c.kernel_size == (3, 3, 3) for c in convs)
    assert all(c.padding == (1, 1, 1) for c in convs)
    assert [c.stride for c in convs] == [(2, 2, 2), (1, 1, 1), (1, 1, 1)]
    # the stages are those of ResNet3D
    ref = ResNet3D(depth=18, in_channels=3, base_channels=8)
    assert ([k for k in model.state_dict() if not k.startswith('stem.')] == [
        k for k in ref.state_dict() if not k.startswith('conv1.')
    ])


def test_resnet3d_v1c_group_norm():
    model = ResNet3DV1c(
        depth=50,
        base_channels=4,
        norm_cfg=dict(type='GN', num_groups=2, requires_grad=True))
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms and all(isinstance(m, GroupNorm) for m in norms)
    model.init_weights()
    out = model(torch.rand(1, 1, 3, 16, 24))
    assert [o.shape for o in out] == [torch.Size([1, 128, 3, 1, 1])]


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_resnet3d_v1c_frozen_stages(frozen_stages):
    model = ResNet3DV1c(
        depth=18, base_channels=4, frozen_stages=frozen_stages)
    model.init_weights()
    model.train()
    frozen = [model.stem] + [
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


def test_resnet3d_v1c_norm_eval():
    model = ResNet3DV1c(depth=18, base_channels=4, norm_eval=True)
    model.train()
    assert check_norm_state(model.modules(), False)
    assert all(p.requires_grad for p in model.parameters())


def test_resnet3d_v1c_registry_and_doctest():
    model = MODELS.build(dict(type='ResNet3DV1c', depth=18, base_channels=2))
    assert type(model) is ResNet3DV1c
    result = doctest.testmod(resnet3d_v1c_module)
    assert result.attempted > 0 and result.failed == 0


def test_resnet3d_v1c_bad_arguments():
    with pytest.raises(KeyError):
        # depth must be a key of arch_settings
        ResNet3DV1c(depth=26)

    with pytest.raises(ValueError, match='slice_strides'):
        # one D stride per stage
        ResNet3DV1c(depth=18, slice_strides=(1, 2))

    model = ResNet3DV1c(depth=18, base_channels=2)
    with pytest.raises(ValueError, match=r'\(N, C, D, H, W\)'):
        # a 2D image must be turned into a volume first
        model(torch.rand(1, 1, 32, 32))


def test_resnet3d_v1c18_complexity():
    """The README's model-table row: the deep stem adds parameters and
    FLOPs to ResNet3D-18's (33.67 M / 15.99 G)."""
    params, flops = table2_complexity(ResNet3DV1c(depth=18))
    assert params / 1e6 == pytest.approx(33.73, rel=0.005)
    assert flops / 1e9 == pytest.approx(18.32, rel=0.005)
