import doctest

import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS

import svd_mm.models.necks.gtm as gtm_module
from svd_mm.models.necks import GTMNeck

IN_CHANNELS = [4, 8, 16, 32]
# (H, W) of each level: non-square, halved per level
SIZES = [(24, 40), (12, 20), (6, 10), (3, 5)]
PRETRAIN_DEPTHS = [3, 3, 3, 3]
DEEPLESION_DEPTHS = [9, 5, 3, 1]


def _inputs(depths, channels=IN_CHANNELS, batch=2):
    return [
        torch.randn(batch, c, d, h, w)
        for c, d, (h, w) in zip(channels, depths, SIZES)
    ]


@pytest.mark.parametrize('mode', GTMNeck.modes)
@pytest.mark.parametrize('depths', [PRETRAIN_DEPTHS, DEEPLESION_DEPTHS])
@pytest.mark.parametrize('norm_cfg', [None, dict(type='GN', num_groups=2)])
def test_gtm_output_shapes(mode, depths, norm_cfg):
    neck = GTMNeck(IN_CHANNELS, depths, mode=mode, norm_cfg=norm_cfg)
    neck.init_weights()
    outs = neck(tuple(_inputs(depths)))
    assert isinstance(outs, tuple)
    assert [o.shape for o in outs] == [
        torch.Size([2, c, h, w]) for c, (h, w) in zip(IN_CHANNELS, SIZES)
    ]
    assert neck.out_channels == IN_CHANNELS


def test_gtm_layers_per_mode():
    depths = DEEPLESION_DEPTHS
    neck = GTMNeck(IN_CHANNELS, depths, mode='group_conv')
    for conv, c, d in zip(neck.convs, IN_CHANNELS, depths):
        assert isinstance(conv, nn.Conv2d)
        assert conv.kernel_size == (1, 1) and conv.groups == c
        assert conv.weight.shape == torch.Size([c, d, 1, 1])
        assert conv.bias is not None
    # a depth-1 level still has its (1-slice) grouped convolution
    assert neck.convs[3].weight.shape == torch.Size([32, 1, 1, 1])

    neck = GTMNeck(IN_CHANNELS, depths, mode='conv3d',
                   norm_cfg=dict(type='GN', num_groups=2))
    for conv, norm, c, d in zip(neck.convs, neck.norms, IN_CHANNELS, depths):
        assert isinstance(conv, nn.Conv3d) and conv.groups == 1
        assert conv.weight.shape == torch.Size([c, c, d, 1, 1])
        # the norm replaces the bias
        assert conv.bias is None
        assert isinstance(norm, nn.GroupNorm) and norm.num_channels == c

    neck = GTMNeck(IN_CHANNELS, depths, mode='center_slice',
                   norm_cfg=dict(type='GN', num_groups=2))
    assert list(neck.parameters()) == []
    assert neck.activate is None and neck.norms is None


@pytest.mark.parametrize('norm_cfg', [None, dict(type='BN')])
def test_gtm_group_conv_only_mixes_slices_of_one_channel(norm_cfg):
    depths = DEEPLESION_DEPTHS
    # no activation: a ReLU could hide a change by clipping it to 0
    neck = GTMNeck(IN_CHANNELS, depths, norm_cfg=norm_cfg, act_cfg=None)
    neck.init_weights()
    neck.eval()
    inputs = _inputs(depths)
    with torch.no_grad():
        ref = neck(inputs)
        for level, c in ((0, 1), (1, 7), (3, 30)):
            x = inputs[level].clone()
            # perturb every slice of channel c
            x[:, c] += torch.randn_like(x[:, c])
            perturbed = list(inputs)
            perturbed[level] = x
            out = neck(perturbed)
            changed = (out[level] - ref[level]).abs().amax(dim=(0, 2, 3))
            assert changed[c] > 1e-4
            others = torch.cat([changed[:c], changed[c + 1:]])
            assert torch.all(others == 0)
            # the other levels do not move at all
            assert all(
                torch.equal(out[i], ref[i]) for i in range(4) if i != level)


def test_gtm_group_conv_and_conv3d_math():
    depths = [3, 5]
    x = [torch.randn(2, 4, 3, 6, 5), torch.randn(2, 8, 5, 3, 4)]
    neck = GTMNeck([4, 8], depths, act_cfg=None)
    out = neck(x)
    for level in range(2):
        conv = neck.convs[level]
        # output channel c = sum_d w[c, d] * x[:, c, d] + b[c]
        w = conv.weight.view(conv.out_channels, -1)
        expected = torch.einsum('ncdhw,cd->nchw', x[level], w)
        expected = expected + conv.bias.view(1, -1, 1, 1)
        assert torch.allclose(out[level], expected, atol=1e-5)

    neck = GTMNeck([4, 8], depths, mode='conv3d', act_cfg=None)
    out = neck(x)
    for level in range(2):
        conv = neck.convs[level]
        w = conv.weight[..., 0, 0]
        expected = torch.einsum('ncdhw,ocd->nohw', x[level], w)
        expected = expected + conv.bias.view(1, -1, 1, 1)
        assert torch.allclose(out[level], expected, atol=1e-5)
    # the default ReLU follows the convolution
    relu_neck = GTMNeck([4, 8], depths, mode='conv3d')
    relu_neck.load_state_dict(neck.state_dict())
    assert all(
        torch.equal(a, b.clamp(min=0))
        for a, b in zip(relu_neck(x), neck(x)))


@pytest.mark.parametrize('depths', [PRETRAIN_DEPTHS, DEEPLESION_DEPTHS,
                                    [4, 2, 2, 1]])
def test_gtm_center_slice(depths):
    neck = GTMNeck(IN_CHANNELS, depths, mode='center_slice')
    inputs = _inputs(depths)
    outs = neck(inputs)
    for x, out, d in zip(inputs, outs, depths):
        assert torch.equal(out, x[:, :, d // 2])


def test_gtm_bad_inputs():
    neck = GTMNeck(IN_CHANNELS, DEEPLESION_DEPTHS)
    inputs = _inputs(DEEPLESION_DEPTHS)

    with pytest.raises(ValueError, match='level 1.*D=5.*D=3'):
        # level 1 was configured with depth 5, the backbone gives 3
        neck(inputs[:1] + [torch.randn(2, 8, 3, 12, 20)] + inputs[2:])

    with pytest.raises(ValueError, match='level 2.*in_channels=16.*C=8'):
        # the channels of a level must match in_channels
        neck(inputs[:2] + [torch.randn(2, 8, 3, 6, 10)] + inputs[3:])

    with pytest.raises(ValueError, match=r'level 0.*\(N, C, D, H, W\)'):
        # a 2D level has no D to fuse
        neck([torch.randn(2, 4, 24, 40)] + inputs[1:])

    with pytest.raises(ValueError, match='4 tensors.*3 levels'):
        # one tensor per configured level
        neck(inputs[:3])

    with pytest.raises(ValueError, match='4 tensors.*a tensor of shape'):
        # a bare tensor instead of a tuple of levels
        neck(inputs[0])


def test_gtm_bad_arguments():
    with pytest.raises(ValueError, match='mode'):
        # only the three compared modes
        GTMNeck(IN_CHANNELS, PRETRAIN_DEPTHS, mode='mean')

    with pytest.raises(ValueError, match='one entry per level'):
        # one depth per level
        GTMNeck(IN_CHANNELS, [3, 3, 3])

    with pytest.raises(ValueError, match='positive'):
        # a level must have at least one slice
        GTMNeck([4], [0])


def test_gtm_registry_and_doctest():
    neck = MODELS.build(
        dict(type='GTMNeck', in_channels=[4], depths=[3], mode='conv3d'))
    assert isinstance(neck, GTMNeck)
    result = doctest.testmod(gtm_module)
    assert result.attempted > 0 and result.failed == 0


def test_gtm_chains_into_mmdet_fpn():
    import mmdet  # noqa: F401
    import mmdet.models  # noqa: F401  (registers FPN)
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope

    gtm_cfg = dict(
        type='GTMNeck',
        in_channels=IN_CHANNELS,
        depths=DEEPLESION_DEPTHS,
        norm_cfg=dict(type='GN', num_groups=2))
    with DefaultScope.overwrite_default_scope('mmdet'):
        gtm = DET_MODELS.build(gtm_cfg)
        fpn = DET_MODELS.build(
            dict(
                type='FPN',
                in_channels=gtm.out_channels,
                out_channels=8,
                num_outs=5))
        # a detector's ``neck=[gtm, fpn]`` is built as a Sequential
        neck = DET_MODELS.build([
            gtm_cfg,
            dict(type='FPN', in_channels=IN_CHANNELS, out_channels=8,
                 num_outs=5)
        ])
    assert isinstance(gtm, GTMNeck)
    inputs = tuple(_inputs(DEEPLESION_DEPTHS))
    expected = [torch.Size([2, 8, h, w]) for h, w in SIZES + [(2, 3)]]
    outs = fpn(gtm(inputs))
    assert [o.shape for o in outs] == expected
    assert [o.shape for o in neck(inputs)] == expected
