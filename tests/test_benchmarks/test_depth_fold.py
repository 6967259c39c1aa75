import copy
import doctest
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from svd_mm.models.backbones import ResNet3D
from tests.helpers.tools import load_script

# benchmarks/depth_fold.py: a performance experiment beside its benchmark
depth_fold_module = load_script(
    Path(__file__).parents[2] / 'benchmarks' / 'depth_fold.py')
DepthFoldedConv3d = depth_fold_module.DepthFoldedConv3d
fold_depth = depth_fold_module.fold_depth
is_depth_foldable = depth_fold_module.is_depth_foldable

# [Conv3d kwargs (in=3, out=5), input depths D]; H, W = 9, 7 (non-cubic)
CONV_CASES = [
    # 3x3x3 of the blocks in pre-training mode: D stays D
    [dict(kernel_size=3, padding=1), (1, 3, 5)],
    # 7x7x7 stem: the depth kernel is larger than D=3
    [dict(kernel_size=7, stride=(1, 2, 2), padding=3), (1, 3, 4)],
    # stride 2 along every axis, as in fine-tuning
    [dict(kernel_size=3, stride=2, padding=1), (3, 6, 9)],
    # dilated, padding = dilation
    [dict(kernel_size=3, padding=2, dilation=2), (3, 5)],
    # 1x1x1 shortcut with H/W stride
    [dict(kernel_size=1, stride=(1, 2, 2)), (3, 4)],
    # anisotropic kernel, D stride 2, padding smaller than half the kernel,
    # bias
    [
        dict(
            kernel_size=(5, 3, 1),
            stride=(2, 1, 1),
            padding=(1, 1, 0),
            bias=True), (3, 6)
    ],
    # no depth padding: D shrinks
    [dict(kernel_size=(3, 3, 3), padding=(0, 1, 1)), (3, 5)],
]


def _conv_inputs(conv_kwargs, depth, channels_last=False):
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 5, **conv_kwargs)
    x = torch.randn(2, 3, depth, 9, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
        conv.to(memory_format=torch.channels_last_3d)
    return conv, x


@pytest.mark.parametrize('conv_kwargs,depths', CONV_CASES)
def test_folded_conv_equals_conv3d(conv_kwargs, depths):
    for depth in depths:
        conv, x = _conv_inputs(conv_kwargs, depth)
        folded = DepthFoldedConv3d(conv)
        expected = conv(x)
        out = folded(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('conv_kwargs,depths', CONV_CASES)
def test_folded_conv_gradients_equal_conv3d(conv_kwargs, depths):
    depth = depths[-1]
    conv, x = _conv_inputs(conv_kwargs, depth)
    ref_conv = copy.deepcopy(conv)
    folded = DepthFoldedConv3d(conv)
    x_ref = x.clone().requires_grad_()
    x_fold = x.clone().requires_grad_()
    grad_out = torch.randn_like(ref_conv(x_ref))
    ref_conv(x_ref).backward(grad_out)
    folded(x_fold).backward(grad_out)
    torch.testing.assert_close(x_fold.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        conv.weight.grad, ref_conv.weight.grad, rtol=1e-4, atol=1e-4)
    if conv.bias is not None:
        torch.testing.assert_close(
            conv.bias.grad, ref_conv.bias.grad, rtol=1e-4, atol=1e-4)


def test_folded_conv_shares_parameters():
    conv = nn.Conv3d(2, 4, 3, padding=1, bias=True)
    folded = DepthFoldedConv3d(conv)
    assert folded.weight is conv.weight
    assert folded.bias is conv.bias
    assert isinstance(folded, nn.Conv3d)
    assert list(folded.state_dict()) == ['weight', 'bias']
    assert folded.folded_weight(3).shape == torch.Size([12, 6, 3, 3])


def test_folded_conv_keeps_channels_last():
    conv, x = _conv_inputs(dict(kernel_size=3, padding=1), 3, True)
    out = DepthFoldedConv3d(conv)(x)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    assert not out.is_contiguous()
    torch.testing.assert_close(out, conv(x), rtol=1e-4, atol=1e-5)
    # one input channel: a channels_last_3d input is told by its strides
    conv = nn.Conv3d(1, 4, 7, stride=(1, 2, 2), padding=3)
    x = torch.randn(2, 1, 3, 10, 8)
    out = DepthFoldedConv3d(conv)(x)
    assert out.is_contiguous()
    x_cl = torch.empty(x.shape, memory_format=torch.channels_last_3d).copy_(x)
    assert x_cl.stride(1) == 1
    out = DepthFoldedConv3d(conv)(x_cl)
    assert not out.is_contiguous()
    torch.testing.assert_close(out, conv(x), rtol=1e-4, atol=1e-5)


def test_folded_conv_bad_arguments():
    # grouped convolutions mix channels per group, not foldable
    with pytest.raises(TypeError, match='groups=1'):
        DepthFoldedConv3d(nn.Conv3d(4, 4, 3, padding=1, groups=2))
    # string padding is resolved only at run time
    with pytest.raises(TypeError, match='numeric'):
        DepthFoldedConv3d(nn.Conv3d(2, 4, 3, padding='same'))
    # non-zero padding modes are not a band of zeros
    with pytest.raises(TypeError, match='zeros'):
        DepthFoldedConv3d(
            nn.Conv3d(2, 4, 3, padding=1, padding_mode='reflect'))
    # only 3D convolutions have a depth to fold
    with pytest.raises(TypeError, match='nn.Conv3d'):
        DepthFoldedConv3d(nn.Conv2d(2, 4, 3))
    folded = DepthFoldedConv3d(nn.Conv3d(2, 4, 3, padding=1))
    # the input must be (N, C, D, H, W)
    with pytest.raises(ValueError, match=r'\(2, 3, 8\)'):
        folded(torch.rand(2, 3, 8))
    # the channels must match in_channels
    with pytest.raises(ValueError, match='in_channels=2'):
        folded(torch.rand(1, 3, 3, 8, 8))


def test_is_depth_foldable():
    assert is_depth_foldable(nn.Conv3d(1, 2, 3))
    assert not is_depth_foldable(nn.Conv2d(1, 2, 3))
    assert not is_depth_foldable(nn.Conv3d(2, 2, 3, groups=2))
    assert not is_depth_foldable(DepthFoldedConv3d(nn.Conv3d(1, 2, 3)))


def _resnet(**kwargs):
    torch.manual_seed(0)
    model = ResNet3D(
        depth=18, base_channels=4, out_indices=(0, 1, 2, 3), **kwargs)
    model.init_weights()
    # non-trivial norms, so that a wrong fold cannot hide behind zeros
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return model


def _folded_convs(model):
    return [
        name for name, m in model.named_modules()
        if isinstance(m, DepthFoldedConv3d)
    ]


def test_fold_depth_selection():
    # default: the convolutions reading one channel (the stem)
    model = fold_depth(_resnet())
    assert _folded_convs(model) == ['conv1.conv']
    # select every foldable convolution
    model = fold_depth(_resnet(), select=lambda name, conv: True)
    num_conv3d = sum(isinstance(m, nn.Conv3d) for m in _resnet().modules())
    assert len(_folded_convs(model)) == num_conv3d == 20
    # select by name
    model = fold_depth(
        _resnet(), select=lambda name, conv: name.startswith('layer4'))
    assert all(n.startswith('layer4') for n in _folded_convs(model))
    assert len(_folded_convs(model)) == 5
    # a bare Conv3d is returned folded
    assert isinstance(fold_depth(nn.Conv3d(1, 2, 3)), DepthFoldedConv3d)
    assert type(fold_depth(nn.Conv3d(2, 2, 3))) is nn.Conv3d
    # the state dict is unchanged: same keys, same tensors
    plain = _resnet()
    plain_state = plain.state_dict()
    folded_state = fold_depth(plain, select=lambda n, c: True).state_dict()
    assert list(folded_state) == list(plain_state)
    for key, value in plain_state.items():
        assert folded_state[key] is value or torch.equal(
            folded_state[key], value)


# [ResNet3D kwargs, input (N, C, D, H, W)]: pre-training mode (D=3 stays 3)
# and a fine-tuning mode with D strides
MODEL_CASES = [
    [dict(), (2, 1, 3, 40, 56)],
    [dict(slice_strides=(1, 2, 2, 2)), (2, 1, 9, 32, 24)],
]


@pytest.mark.parametrize('select', [None, lambda name, conv: True])
@pytest.mark.parametrize('kwargs,in_shape', MODEL_CASES)
def test_fold_depth_training_equals_plain(kwargs, in_shape, select):
    """Outputs, batch-norm statistics, gradients and one SGD step agree.

    float64: in float32 the fold changes the rounding (~1e-7 relative),
    which may flip the ReLU mask of an activation sitting at ~0 and, via
    the batch norm backward, move a channel's gradient by a few percent.
    """
    plain = _resnet(**kwargs).double().train()
    folded = fold_depth(copy.deepcopy(plain), select=select).train()
    x = torch.randn(in_shape, dtype=torch.float64)
    outs_plain = plain(x)
    outs_folded = folded(x)
    assert [o.shape for o in outs_folded] == [o.shape for o in outs_plain]
    if in_shape[2] == 3:
        assert all(o.size(2) == 3 for o in outs_folded)
    for a, b in zip(outs_folded, outs_plain):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    for (name, a), b in zip(folded.named_buffers(), plain.buffers()):
        torch.testing.assert_close(
            a, b, rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f'{n}: {m}')

    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for m in (plain, folded)
    ]
    for model, outs, opt in zip((plain, folded), (outs_plain, outs_folded),
                                optimizers):
        sum(o.square().mean() for o in outs).backward()
        opt.step()
    for (name, a), b in zip(folded.named_parameters(), plain.parameters()):
        torch.testing.assert_close(
            a.grad,
            b.grad,
            rtol=1e-9,
            atol=1e-10,
            msg=lambda m, n=name: f'{n}: {m}')
        torch.testing.assert_close(
            a, b, rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f'{n}: {m}')


def test_fold_depth_float32_training_outputs():
    """The float32 kernels that are benchmarked give the same outputs."""
    plain = _resnet().train()
    folded = fold_depth(copy.deepcopy(plain)).train()
    x = torch.randn(2, 1, 3, 40, 56)
    for a, b in zip(folded(x), plain(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_fold_depth_eval_equals_plain():
    plain = _resnet()
    x = torch.randn(2, 1, 3, 40, 56)
    plain(x)  # move the running statistics away from (0, 1)
    plain.eval()
    folded = fold_depth(copy.deepcopy(plain), select=lambda n, c: True)
    with torch.no_grad():
        for a, b in zip(folded(x), plain(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_fold_depth_trains_the_original_parameters():
    model = _resnet()
    stem_weight = model.conv1.conv.weight
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = stem_weight.detach().clone()
    fold_depth(model)
    assert model.conv1.conv.weight is stem_weight
    model(torch.randn(2, 1, 3, 32, 32))[-1].sum().backward()
    optimizer.step()
    assert not torch.equal(stem_weight.detach(), before)


def test_doctest():
    failures, _ = doctest.testmod(depth_fold_module)
    assert failures == 0
