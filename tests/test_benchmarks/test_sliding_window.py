"""benchmarks/sliding_window.py: the model it times is trained on the real
volume, and the script's equality check against MONAI holds."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.tools import load_script

SCRIPT = Path(__file__).parents[2] / 'benchmarks' / 'sliding_window.py'
# a narrow model and small windows over a small cut of the real CT
TINY = [
    '--width', '4', '--roi', '8', '32', '32', '--stride', '4', '16', '16',
    '--slices', '16', '--size', '64', '--batch-windows', '2', '--threads', '1',
    '--device', 'cpu'
]


@pytest.fixture(scope='module')
def bench():
    return load_script(SCRIPT)


def test_real_volume_holds_the_lesion(bench):
    volume, seg = bench.real_volume(16, 64)
    assert volume.dtype == np.uint8 and volume.shape == (1, 16, 64, 64)
    assert seg.shape == (16, 64, 64) and set(np.unique(seg)) == {0, 1}
    # the cut is centred on the lesion's slices
    assert seg.any(axis=(1, 2))[8]


def test_train_briefly_lowers_the_loss(bench):
    args = bench.parse_args(TINY)
    model = bench.build_model(args)
    volume, seg = bench.real_volume(args.slices, args.size)
    with torch.no_grad():
        inputs = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(volume)]), False)['inputs']
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first, last = bench.train_briefly(model, inputs, seg, steps=12)
    assert np.isfinite(first) and np.isfinite(last)
    assert last < first
    assert not model.training
    changed = [
        k for k, v in model.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('decode_head.') for k in changed)


def test_script_runs_and_matches_monai(bench, tmp_path, capsys):
    """End to end, memory workers included (one fresh process per method,
    so one row only); exit status 0 means the same-map outputs of svd_mm's
    path and of the former own implementation equal MONAI's within
    --atol."""
    out = tmp_path / 'rows.json'
    bench.main(TINY + [
        '--repeat', '1', '--train-steps', '3', '--overhead-repeat', '1',
        '--rows', 'gaussian (same map)', '--json',
        str(out)
    ])
    printed = capsys.readouterr().out
    assert 'trained 3 Adam steps' in printed
    saved = json.loads(out.read_text())
    assert saved['shape'] == [1, 1, 16, 64, 64]
    for part in ('rows', 'machinery'):
        assert [r['blend'] for r in saved[part]] == ['gaussian (same map)']
        for row in saved[part]:
            for method in ('svd_mm', 'own', 'monai'):
                assert row[f'{method}_max_abs_diff'] <= 1e-4 * max(
                    row['logit_scale'], 1.)
                assert row[f'{method}_s'] > 0
                assert row[f'{method}_peak_mib'] > 0
            assert row['monai_speed_x'] == 1 and row['monai_leaner_x'] == 1
    assert 'machinery only' in printed


def test_reference_slide_blends_exactly():
    """The former own implementation averages the windows: with the
    identity network a constant blend gives the input back, a Gaussian
    one too (the weights cancel), with padding and two volumes."""
    reference = load_script(SCRIPT.parent / 'reference_slide.py')
    assert reference.window_starts(11, 4, 3) == [0, 3, 6, 7]
    inputs = torch.rand(2, 1, 5, 13, 11)
    for blend in ('constant', 'gaussian'):
        out = reference.slide_inference(
            inputs,
            lambda w: w.expand(-1, 2, -1, -1, -1) * 2.0, (6, 8, 4), (3, 5, 3),
            num_classes=2,
            batch_windows=3,
            blend=blend)
        torch.testing.assert_close(out, 2 * inputs.expand(-1, 2, -1, -1, -1))


def test_cheap_predictor_is_restored(bench):
    """The machinery-only timing swaps the network out and back; with the
    network, the constant blends of the three methods agree."""
    args = bench.parse_args(TINY + ['--rows', 'constant'])
    model = bench.build_model(args)
    volume, _ = bench.real_volume(args.slices, args.size)
    with torch.no_grad():
        inputs = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(volume)]), False)['inputs']
    names = ['svd_mm:constant', 'own:constant', 'monai:constant']
    runners = {n: bench.make_runner(model, n, inputs) for n in names}
    with bench.stand_in(model), torch.no_grad():
        assert 'encode_decode' in vars(model)  # the stand-in
        times = bench._time_rows(runners, names, 1, 'cpu')
    assert set(times) == set(names) and min(min(t) for t in times.values()) > 0
    assert 'encode_decode' not in vars(model)
    with torch.no_grad():
        outputs = {name: runners[name]() for name in names}
    for name in names[:2]:
        torch.testing.assert_close(outputs[name], outputs['monai:constant'])
    # the cheap predictor blends to exactly 2 x the input everywhere
    model.encode_decode = bench.cheap_predictor(model.out_channels)
    with torch.no_grad():
        for name in names:
            out = runners[name]()
            torch.testing.assert_close(out, 2 * inputs.expand_as(out))
