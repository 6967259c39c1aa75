"""benchmarks/froc.py: at a tiny size the vectorised FROC equals the
reference loop, and the script's check fails on a different reading."""
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.tools import load_script

SCRIPT = Path(__file__).parents[2] / 'benchmarks' / 'froc.py'
TINY = ['--num-images', '30', '--num-dets', '300', '--repeat', '1']


@pytest.fixture(scope='module')
def bench():
    return load_script(SCRIPT)


def test_make_detections(bench):
    dets, scores, gts = bench.make_detections(30, 300, seed=1)
    assert len(dets) == len(scores) == len(gts) == 30
    assert sum(len(d) for d in dets) == 300
    assert all(s.dtype == np.float32 and len(s) == len(d)
               for d, s in zip(dets, scores))
    assert any(len(g) == 0 for g in gts) and any(len(g) > 1 for g in gts)
    boxes = np.vstack(dets)
    assert np.all(boxes[:, 2:] > boxes[:, :2])


def test_script_prints_ratio_and_zero_difference(bench, tmp_path, capsys):
    out = tmp_path / 'rows.json'
    rows = bench.main(TINY + ['--criteria', 'iou', 'center', '--json',
                              str(out)])
    printed = capsys.readouterr().out
    assert '300 detections' in printed
    assert printed.count('max |diff| vs reference loop 0.0e+00') == 2
    assert 'speed ratio' in printed
    assert [r['criterion'] for r in rows] == ['iou', 'center']
    for row in rows:
        assert row['max_abs_diff'] == 0. and row['final_beyond_last_fp']
        assert row['compared'] > 100
        assert row['speed_ratio'] > 0
        assert min(row['max_minus_reference']) >= 0
    assert json.loads(out.read_text())['rows'] == rows


def test_script_fails_on_the_max_reading(bench, monkeypatch, capsys):
    """Read with curve='max', the vectorised FROC differs from the
    reference loop and the script exits with status 1."""
    calculate = bench.FROCMetric.calculate

    def max_reading(*args, **kwargs):
        kwargs.setdefault('curve', 'max')
        return calculate(*args, **kwargs)

    monkeypatch.setattr(bench.FROCMetric, 'calculate', max_reading)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(TINY)
    assert exit_info.value.code == 1
    assert 'MISMATCH' in capsys.readouterr().out
