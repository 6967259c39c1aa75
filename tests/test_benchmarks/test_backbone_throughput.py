"""The levers of benchmarks/backbone_throughput.py keep the numbers.

Every lever the benchmark offers is checked against the plain model: same
outputs, and for the training levers the same gradients.
"""
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.helpers.tools import load_script

SCRIPT = (Path(__file__).parents[2] / 'benchmarks' / 'backbone_throughput.py')


@pytest.fixture(scope='module')
def bench():
    return load_script(SCRIPT)


# (N, C, D, H, W): small, non-square; D=3 as in pre-training
IN_SHAPE = (2, 1, 3, 32, 24)


def _randomize_norms(model):
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def _pair(bench, name, levers, mode, base_channels=64):
    """The plain model and a copy with ``levers``, same weights."""
    torch.manual_seed(0)
    plain = bench.build_model(name, base_channels=base_channels)
    _randomize_norms(plain)
    lever = bench.build_model(
        name, base_channels=base_channels, levers=levers)
    lever.load_state_dict(plain.state_dict())
    if mode == 'infer':
        plain.eval()
        lever.eval()
    lever = bench.apply_levers(lever, levers, mode)
    x, y = bench.make_input(IN_SHAPE[0], IN_SHAPE[1:], (), 'cpu')
    x_lever, _ = bench.make_input(IN_SHAPE[0], IN_SHAPE[1:], levers, 'cpu')
    return plain, lever, x, x_lever, y


# [model, levers, base_channels]: the training levers; torchvision has a
# fixed width
TRAIN_CASES = [
    ['svd_mm', ('channels_last', ), 8],
    ['svd_mm', ('channels_last_early', ), 8],
    ['svd_mm', ('depth_fold', ), 8],
    ['svd_mm', ('channels_last_early', 'depth_fold'), 8],
    ['torchvision', ('channels_last_early', ), 64],
    ['monai', ('channels_last_early', ), 8],
]


@pytest.mark.parametrize('name,levers,base_channels', TRAIN_CASES)
def test_train_levers_keep_outputs(bench, name, levers, base_channels):
    """float32, the benchmarked kernels: same logits, loss and BN stats."""
    plain, lever, x, x_lever, y = _pair(bench, name, levers, 'train',
                                        base_channels)
    assert torch.equal(x_lever, x)
    logits = lever(x_lever)
    logits_plain = plain(x)
    torch.testing.assert_close(logits, logits_plain, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(
        F.cross_entropy(logits, y), F.cross_entropy(logits_plain, y))
    for (key, b_lever), b_plain in zip(lever.named_buffers(), plain.buffers()):
        torch.testing.assert_close(
            b_lever,
            b_plain,
            rtol=1e-4,
            atol=1e-5,
            msg=lambda m, key=key: f'{key}: {m}')


@pytest.mark.parametrize('name,levers,base_channels',
                         [c for c in TRAIN_CASES if c[0] != 'torchvision'])
def test_train_levers_keep_gradients(bench, name, levers, base_channels):
    """float64: every parameter gradient agrees.

    In float32 the levers change the rounding (~1e-6 relative), which
    flips the ReLU mask of the odd activation that sits at ~0; through
    the batch norm backward that moves a whole channel's gradient by up
    to a few percent of its largest entry. float64 leaves no activation
    that close to 0, so the comparison can be tight. (torchvision shares
    the code path of MONAI and has no narrow variant to keep this fast.)
    """
    plain, lever, x, x_lever, y = _pair(bench, name, levers, 'train',
                                        base_channels)
    plain.double()
    lever.double()
    grads = []
    for model, inputs in ((plain, x.double()), (lever, x_lever.double())):
        F.cross_entropy(model(inputs), y).backward()
        grads.append([(k, p.grad) for k, p in model.named_parameters()])
    assert [k for k, _ in grads[0]] == [k for k, _ in grads[1]]
    for (key, g_plain), (_, g_lever) in zip(*grads):
        torch.testing.assert_close(
            g_lever,
            g_plain,
            rtol=1e-9,
            atol=1e-11,
            msg=lambda m, key=key: f'{key}: {m}')


def test_channels_last_early_layouts(bench):
    _, model, _, x, _ = _pair(bench, 'svd_mm', ('channels_last_early', ),
                              'train', 8)
    # the input keeps the channels_last_3d strides even with C=1
    assert x.stride(1) == 1
    layouts = {}

    def record(name):

        def hook(module, args, output):
            layouts[name] = output.is_contiguous(
                memory_format=torch.channels_last_3d)

        return hook

    for name in ('conv1', 'layer1', 'layer2', 'layer3', 'layer4'):
        getattr(model.backbone, name).register_forward_hook(record(name))
    model(x)
    assert layouts == dict(
        conv1=True, layer1=True, layer2=True, layer3=True, layer4=False)
    # svd_mm's row is the backbone's own option, not the generic hooks
    assert model.backbone.channels_last_stages == 3
    assert not model.backbone.layer4._forward_pre_hooks


@pytest.mark.parametrize('stages', [1, 2, 4])
def test_channels_last_early_stage_count(bench, stages):
    """The generic hook (MONAI here) and svd_mm's option split at the
    same stage."""
    for name in ('svd_mm', 'monai'):
        model = bench.apply_levers(
            bench.build_model(
                name,
                base_channels=8,
                levers=('channels_last_early', ),
                channels_last_stages=stages), ('channels_last_early', ),
            'train', stages)
        layouts = {}
        for layer in bench.LAYERS:
            getattr(model.backbone, layer).register_forward_hook(
                lambda m, a, out, layer=layer: layouts.__setitem__(
                    layer, out.stride(1) == 1))
        x, _ = bench.make_input(2, IN_SHAPE[1:], ('channels_last_early', ),
                                'cpu')
        model(x)
        assert layouts == {
            layer: i < stages
            for i, layer in enumerate(bench.LAYERS)
        }, name


def test_depth_fold_lever_folds_the_stem(bench):
    _, model, _, _, _ = _pair(bench, 'svd_mm', ('depth_fold', ), 'train', 8)
    folded = [
        name for name, m in model.named_modules()
        if isinstance(m, bench.DEPTH_FOLD.DepthFoldedConv3d)
    ]
    assert folded == ['backbone.conv1.conv']


# [model, levers, base_channels]: the inference-only lever (bn_fold) and
# the others in eval mode
INFER_CASES = [
    ['svd_mm', ('bn_fold', ), 8],
    ['svd_mm', ('bn_fold', 'channels_last_early', 'depth_fold'), 8],
    ['torchvision', ('bn_fold', ), 64],
    ['monai', ('bn_fold', ), 8],
]


@pytest.mark.parametrize('name,levers,base_channels', INFER_CASES)
def test_infer_levers_keep_outputs(bench, name, levers, base_channels):
    plain, lever, x, x_lever, _ = _pair(bench, name, levers, 'infer',
                                        base_channels)
    with torch.no_grad():
        torch.testing.assert_close(
            lever(x_lever), plain(x), rtol=1e-3, atol=1e-4)
    if 'bn_fold' in levers:
        # every batch norm of the backbone follows a convolution
        assert not any(
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            for m in lever.modules())


def test_bad_levers(bench):
    # batch-norm folding uses the running statistics: inference only
    with pytest.raises(ValueError, match='inference-only'):
        bench.apply_levers(bench.build_model('svd_mm'), ('bn_fold', ), 'train')
    # the two layouts exclude each other
    with pytest.raises(ValueError, match='exclude'):
        bench.apply_levers(
            bench.build_model('svd_mm'),
            ('channels_last', 'channels_last_early'), 'train')
    # a lever name that does not exist
    with pytest.raises(SystemExit, match='unknown lever'):
        bench.parse_lever_rows('channels_last,fast')
    # a model name that does not exist
    with pytest.raises(KeyError, match='unknown model'):
        bench.build_model('resnet')
    # torchvision's r3d_18 has no width argument
    with pytest.raises(ValueError, match='fixed width'):
        bench.build_model('torchvision', base_channels=16)


def test_parse_lever_rows(bench):
    assert bench.parse_lever_rows('none') == []
    assert bench.parse_lever_rows('depth_fold+channels_last_early,'
                                  'bn_fold') == [('channels_last_early',
                                                  'depth_fold'), ('bn_fold', )]


def test_count_flops(bench):
    flops = bench.count_flops('svd_mm', (1, 3, 32, 32))
    # the useful count drops the padded taps: strictly fewer
    assert 0 < flops['useful'] < flops['mmengine']
    # 7x7x7 stem, 1 -> 64 channels, output (64, 3, 16, 16): 343 taps
    # counted, 3 of 7 depth taps and (on 16x16 with padding 3) fewer
    # spatial taps are real
    stem_counted = 2 * 64 * 343 * 3 * 16 * 16
    assert flops['mmengine'] > stem_counted


def test_script_runs(bench, tmp_path):
    """A tiny end-to-end run, memory subprocess included."""
    out = tmp_path / 'rows.json'
    rows = bench.main([
        '--batch', '1', '--size', '24', '20', '--iters', '1', '--warmup', '1',
        '--threads', '1', '--models', 'svd_mm', '--modes', 'train', '--levers',
        'bn_fold', '--ceiling-size', '256', '--json',
        str(out)
    ])
    # bn_fold is inference-only: no training row for it
    assert [(r['label'], r['mode']) for r in rows] == [('svd_mm', 'train')]
    row = rows[0]
    assert row['img_s'] > 0
    assert row['gflops_mmengine'] > row['gflops_useful'] > 0
    assert row['peak_mib'] > 0, row.get('memory_method')
    assert len(row['wall_times']) == len(row['cpu_times']) == 1
    saved = json.loads(out.read_text())
    assert saved['rows'][0]['label'] == 'svd_mm'
