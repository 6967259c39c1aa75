"""benchmarks/pretrain_step.py on tiny images: every row builds its real
detector, trains and reports times, the backbone time and memory."""
import math
from pathlib import Path

import pytest

from tests.helpers.tools import load_script

SCRIPT = Path(__file__).parents[2] / 'benchmarks' / 'pretrain_step.py'


@pytest.fixture(scope='module')
def bench():
    return load_script(SCRIPT)


@pytest.fixture(scope='module')
def rows(bench):
    return {
        name: bench.run_worker(
            name,
            size=64,
            iters=1,
            warmup=0,
            batch=1,
            device='cpu',
            threads=1)
        for name in ('r3d18', 'p3d63', 'r18-2d')
    }


def test_rows_time_the_step_and_the_backbone(rows):
    for name, row in rows.items():
        assert row['name'] == name
        assert len(row['times_s']) == len(row['backbone_times_s']) == 1
        assert 0 < row['backbone_step_s'], name
        assert math.isfinite(row['step_s']) and row['step_s'] > 0, name
        assert row['peak_mib'] > 0
    assert rows['r3d18']['backbone'] == 'ResNet3D'
    assert rows['p3d63']['backbone'] == 'P3D'
    assert rows['r3d18']['input'] == '(N, 1, 3, 64, 64)'
    assert rows['r18-2d']['input'] == '(N, 3, 64, 64)'
    # the backbone sizes of the table in benchmarks/README.md
    assert rows['r3d18']['backbone_params_m'] == pytest.approx(33.16, abs=0.01)
    assert rows['p3d63']['backbone_params_m'] == pytest.approx(24.92, abs=0.01)


def test_table_has_the_backbone_ratio(bench, rows):
    merged = [bench.merge_runs([row, row]) for row in rows.values()]
    times = rows['r3d18']['backbone_times_s']
    assert merged[0]['backbone_times_s'] == times * 2
    table = bench.format_table(merged, 'r3d18')
    header = table.splitlines()[0]
    assert 'backbone s (min)' in header
    assert 'backbone speed ÷ r3d18' in header
    r3d18_line = table.splitlines()[2]
    # the reference row's ratios are 1
    assert r3d18_line.rstrip(' |').endswith('1.00 | 1.00 | 1.00')


def test_seg_rows_time_the_upernets_side_by_side(bench):
    # --task seg: the ADE20K UPerNets, 3D (+ GTM) and mmseg's own 2D
    args = bench.parse_args(['--task', 'seg'])
    assert args.model_names == ['upernet-r3d18', 'upernet-r18-2d']
    assert args.reference == 'upernet-r18-2d'
    # the detection rows stay the default
    assert bench.parse_args([]).model_names == [
        'r3d18', 'p3d63', 'r3d50', 'r18-2d', 'r18-2d-gn'
    ]
    rows = {
        name: bench.run_worker(
            name,
            size=64,
            iters=1,
            warmup=0,
            batch=2,
            device='cpu',
            threads=1)
        for name in args.model_names
    }
    ours, theirs = rows['upernet-r3d18'], rows['upernet-r18-2d']
    assert (ours['backbone'], ours['input']) == ('ResNet3D',
                                                 '(N, 1, 3, 64, 64)')
    assert (theirs['backbone'], theirs['input']) == ('ResNetV1c',
                                                     '(N, 3, 64, 64)')
    for row in rows.values():
        assert math.isfinite(row['step_s']) and row['step_s'] > 0
        assert row['backbone_step_s'] > 0 and row['peak_mib'] > 0
    # same heads: the models differ by the backbones and the GTM only
    assert ours['backbone_params_m'] == pytest.approx(33.16, abs=0.01)
    assert theirs['backbone_params_m'] == pytest.approx(11.20, abs=0.01)
    gtm_params_m = sum(c * 3 + 2 * c for c in (64, 128, 256, 512)) / 1e6
    assert ours['params_m'] - ours['backbone_params_m'] - gtm_params_m == \
        pytest.approx(theirs['params_m'] - theirs['backbone_params_m'],
                      abs=1e-6)
