import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import DefaultScope

import svd_mm  # noqa: F401  (registers 'ACSConv')
from svd_mm.models.backbones import ResNet3D
from svd_mm.models.utils import ACSConv3d


def _explicit_acs(x, weight, bias, split, stride, padding):
    """The three views as explicit conv3d calls, concatenated."""
    a, c, _ = split
    views = [
        (weight[:a].unsqueeze(2), (0, padding, padding)),
        (weight[a:a + c].unsqueeze(3), (padding, 0, padding)),
        (weight[a + c:].unsqueeze(4), (padding, padding, 0)),
    ]
    out = torch.cat(
        [F.conv3d(x, w, None, stride, pad) for w, pad in views if len(w)],
        dim=1)
    return out + bias.view(1, -1, 1, 1, 1)


def _centre_plane_conv3d(conv):
    """An nn.Conv3d with the (k, k, k) kernels that hold each view's 2D
    kernel in their central plane."""
    k = conv.kernel_size[0]
    ref = nn.Conv3d(conv.in_channels, conv.out_channels, k, conv.stride,
                    conv.padding, conv.dilation)
    weight = torch.zeros_like(ref.weight)
    a, c, _ = conv.acs_split
    weight[:a, :, k // 2] = conv.weight[:a]
    weight[a:a + c, :, :, k // 2] = conv.weight[a:a + c]
    weight[a + c:, :, :, :, k // 2] = conv.weight[a + c:]
    ref.weight.data.copy_(weight)
    ref.bias.data.copy_(conv.bias)
    return ref


# [in_channels, out_channels, kernel, stride, (D, H, W), split, out shape]
CASES = [
    [2, 6, 3, 1, (5, 8, 6), (2, 2, 2), (5, 8, 6)],
    [3, 7, 3, (1, 2, 2), (4, 9, 7), (3, 2, 2), (4, 5, 4)],
    [1, 8, 7, (1, 2, 2), (3, 16, 12), (3, 3, 2), (3, 8, 6)],
    [4, 5, 1, 2, (6, 5, 7), (2, 2, 1), (3, 3, 4)],
    [2, 2, 3, 1, (4, 6, 5), (1, 1, 0), (4, 6, 5)],
]


@pytest.mark.parametrize('in_ch,out_ch,k,stride,size,split,out_size', CASES)
def test_acs_conv_equals_three_unsqueezed_conv3d(in_ch, out_ch, k, stride,
                                                 size, split, out_size):
    torch.manual_seed(0)
    conv = ACSConv3d(in_ch, out_ch, k, stride=stride, padding=k // 2)
    # the parameter is the 2D weight
    assert conv.weight.shape == torch.Size([out_ch, in_ch, k, k])
    assert conv.acs_split == split
    x = torch.randn(2, in_ch, *size)
    out = conv(x)
    assert out.shape == torch.Size([2, out_ch, *out_size])
    expected = _explicit_acs(x, conv.weight, conv.bias, split, stride, k // 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # the same shape as the Conv3d it replaces
    assert out.shape == nn.Conv3d(in_ch, out_ch, k, stride, k // 2)(x).shape


# [kernel, stride, padding, dilation, (D, H, W)]: central-tap reading when
# the padding is not k // 2 (crop along the unseen axis) and with dilation
GENERAL = [
    [3, 1, 0, 1, (5, 7, 6)],
    [3, (2, 1, 2), (0, 1, 2), 1, (7, 6, 9)],
    [5, 1, 1, 1, (6, 8, 7)],
    [3, 1, 2, 2, (5, 6, 7)],
    [7, (1, 2, 2), 3, 1, (3, 10, 9)],
]


@pytest.mark.parametrize('k,stride,padding,dilation,size', GENERAL)
def test_acs_conv_equals_conv3d_with_centre_plane_kernels(
        k, stride, padding, dilation, size):
    torch.manual_seed(1)
    conv = ACSConv3d(
        3, 7, k, stride=stride, padding=padding, dilation=dilation)
    x = torch.randn(1, 3, *size)
    torch.testing.assert_close(
        conv(x), _centre_plane_conv3d(conv)(x), rtol=1e-5, atol=1e-5)


def test_acs_conv_custom_split_and_gradients():
    conv = ACSConv3d(2, 6, 3, padding=1, bias=False, acs_split=(6, 0, 0))
    x = torch.randn(1, 2, 4, 5, 6)
    # axial only: every slice d is a 2D convolution of slice d
    out = conv(x)
    for d in range(4):
        torch.testing.assert_close(
            out[:, :, d],
            F.conv2d(x[:, :, d], conv.weight, padding=1),
            rtol=1e-5,
            atol=1e-5)
    out.sum().backward()
    assert conv.weight.grad.shape == torch.Size([6, 2, 3, 3])
    assert conv.bias is None


def test_acs_conv_bad_arguments():
    # even kernels have no central tap
    with pytest.raises(ValueError, match='odd kernel size'):
        ACSConv3d(2, 3, 2)
    # one size for all axes
    with pytest.raises(ValueError, match='odd kernel size'):
        ACSConv3d(2, 3, (3, 1, 3))
    # grouped convolutions are not supported
    with pytest.raises(ValueError, match='groups=1'):
        ACSConv3d(2, 4, 3, groups=2)
    # numeric padding only
    with pytest.raises(ValueError, match='numeric padding'):
        ACSConv3d(2, 3, 3, padding='same')
    # zero padding only
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        ACSConv3d(2, 3, 3, padding_mode='reflect')
    # the split must cover the output channels
    with pytest.raises(ValueError, match='acs_split'):
        ACSConv3d(2, 6, 3, acs_split=(2, 2, 1))
    conv = ACSConv3d(2, 3, 3, padding=1)
    # a 2D input
    with pytest.raises(ValueError, match=r'\(N, 2, D, H, W\)'):
        conv(torch.rand(1, 2, 8, 8))
    # too few input channels
    with pytest.raises(ValueError, match=r'got \(1, 1, 4, 8, 8\)'):
        conv(torch.rand(1, 1, 4, 8, 8))


@pytest.mark.parametrize('scope', [None, 'mmpretrain', 'mmdet', 'mmseg'])
def test_acs_conv_is_a_conv_cfg_type(scope):
    name = f'test_acs_{scope}'
    if scope is None:
        conv = build_conv_layer(dict(type='ACSConv'), 2, 3, 3, padding=1)
    else:
        with DefaultScope.overwrite_default_scope(scope):
            DefaultScope.get_instance(name, scope_name=scope)
            conv = build_conv_layer(dict(type='ACSConv'), 2, 3, 3, padding=1)
    assert isinstance(conv, ACSConv3d)
    module = ConvModule(
        2,
        6,
        3,
        stride=(1, 2, 2),
        padding=1,
        conv_cfg=dict(type='ACSConv'),
        norm_cfg=dict(type='BN3d'))
    assert isinstance(module.conv, ACSConv3d)
    assert module(torch.rand(2, 2, 3, 8,
                             6)).shape == torch.Size([2, 6, 3, 4, 3])


def test_resnet3d_with_acs_convs():
    """ResNet3D with conv_cfg ACSConv: 2D parameters, Conv3d output
    shapes."""
    kwargs = dict(depth=18, base_channels=4, out_indices=(0, 1, 2, 3))
    acs = ResNet3D(conv_cfg=dict(type='ACSConv'), **kwargs).eval()
    plain = ResNet3D(**kwargs).eval()
    assert acs.state_dict().keys() == plain.state_dict().keys()
    assert acs.conv1.conv.weight.shape == torch.Size([4, 1, 7, 7])
    assert acs.layer2[0].conv1.conv.weight.shape == torch.Size([8, 4, 3, 3])
    assert acs.layer2[0].downsample.conv.weight.shape == torch.Size(
        [8, 4, 1, 1])
    x = torch.rand(1, 1, 6, 32, 24)
    with torch.no_grad():
        shapes = [o.shape for o in acs(x)]
        assert shapes == [o.shape for o in plain(x)]
    assert shapes[3] == torch.Size([1, 32, 6, 1, 1])
