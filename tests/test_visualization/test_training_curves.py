"""Training curves from the scalar logs of real (tiny) mmengine runs."""
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner

from svd_mm.visualization import (load_scalar_logs, plot_training_curves,
                                  summarize_scalar_logs)
from svd_mm.visualization.training_curves import split_scalar_logs
from tests.helpers.tools import load_script

TOOL = Path(__file__).parents[2] / 'tools' / 'analysis' / 'plot_curves.py'
ITERS_PER_EPOCH = 4  # 8 samples, batch size 2


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets, mode='tensor'):
        inputs, targets = torch.stack(inputs), torch.stack(targets)
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(
                loss_mse=((out - targets)**2).mean(),
                loss_l1=(out - targets).abs().mean() * 0.1)
        return list(zip(out.detach(), targets))


class ToyError(BaseMetric):
    """Mean absolute error (lower is better) and a made-up score."""

    def process(self, data_batch, data_samples):
        for out, target in data_samples:
            self.results.append(float((out - target).abs().mean()))

    def compute_metrics(self, results):
        error = float(np.mean(results))
        return dict(abs_error=error, score=1. / (1. + error))


def _dataset():
    generator = torch.Generator().manual_seed(0)
    xs = torch.randn(8, 2, generator=generator)
    return [dict(inputs=x, targets=x.sum(0, keepdim=True) * 2) for x in xs]


def _loader(batch_size):
    return dict(
        dataset=_dataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        batch_size=batch_size)


def _train(work_dir, max_epochs, resume=False):
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=_loader(2),
        val_dataloader=_loader(4),
        val_evaluator=Evaluator([ToyError()]),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[2], gamma=0.1, end=10),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type='LocalVisBackend')],
            name=f'curves_{time.time()}'),
        log_level='WARNING',
        resume=resume,
        experiment_name=f'toy_{time.time()}',
        default_scope='mmengine')
    runner.train()
    MMLogger.get_current_instance().setLevel(logging.WARNING)


@pytest.fixture(scope='module')
def work_dirs(tmp_path_factory):
    """Run A: 2 epochs, then resumed to 3 (two timestamp folders). Run B:
    3 epochs in one go."""
    root = tmp_path_factory.mktemp('runs')
    _train(root / 'a', 2)
    time.sleep(1.1)  # a new timestamp folder for the resumed run
    _train(root / 'a', 3, resume=True)
    _train(root / 'b', 3)
    return root / 'a', root / 'b'


def test_load_merges_resumed_run(work_dirs):
    run_a, _ = work_dirs
    assert len(list(run_a.glob('*/vis_data/scalars.json'))) == 2
    records = load_scalar_logs(str(run_a))
    train, val = split_scalar_logs(records)
    assert [r['iter'] for r in train] == list(range(1, 3 * ITERS_PER_EPOCH +
                                                    1))
    assert [r['epoch'] for r in train][-1] == 3
    assert [r['step'] for r in val] == [1, 2, 3]
    assert all('abs_error' in r and 'score' in r for r in val)
    # the learning rate steps down after epoch 2, as in the resumed run
    assert train[-1]['lr'] == pytest.approx(0.005)
    # a json file or the vis_data folder read alone
    one = sorted(run_a.glob('*/vis_data/scalars.json'))[0]
    assert len(split_scalar_logs(load_scalar_logs(str(one)))[0]) == \
        2 * ITERS_PER_EPOCH
    assert load_scalar_logs(str(one.parent)) == load_scalar_logs(str(one))


def test_summarize(work_dirs):
    summary = summarize_scalar_logs(load_scalar_logs(str(work_dirs[1])))
    assert summary['iters'] == 3 * ITERS_PER_EPOCH
    assert summary['epochs'] == 3
    assert summary['last_loss'] > 0
    val = split_scalar_logs(load_scalar_logs(str(work_dirs[1])))[1]
    errors = [r['abs_error'] for r in val]
    # abs_error is an error: its best is the minimum; score the maximum
    assert summary['best']['abs_error']['value'] == pytest.approx(min(errors))
    assert summary['best']['score']['value'] == pytest.approx(
        max(r['score'] for r in val))
    assert summary['best']['abs_error']['step'] == 1 + int(np.argmin(errors))


def _png(path):
    img = mpimg.imread(str(path))
    assert img.ndim == 3
    return img


# [kwargs, (rows, cols) of panels]: loss, abs_error, score, lr -> 2 x 2
PLOT_CASES = [
    [dict(), (2, 2)],
    [dict(metric_keys=['abs_error'], with_lr=False), (1, 2)],
    [dict(loss_keys=['loss_mse'], metric_keys=[], with_lr=False), (1, 1)],
    [dict(smooth=0.6, title='toy'), (2, 2)],
]


@pytest.mark.parametrize('kwargs,grid', PLOT_CASES)
def test_plot_one_run(work_dirs, tmp_path, kwargs, grid):
    out = plot_training_curves(
        str(work_dirs[0]), str(tmp_path / 'curves.png'), dpi=50, **kwargs)
    img = _png(out)
    rows, cols = grid
    # 6.2 x 3.6 inch panels (+ 0.8 inch), at 50 dpi
    assert img.shape[:2] == (round(50 * (3.6 * rows + 0.8)),
                             round(50 * 6.2 * cols))
    assert img.std() > 0.05


def test_plot_several_runs(work_dirs, tmp_path):
    run_a, run_b = work_dirs
    single = _png(
        plot_training_curves({'A': str(run_a)}, str(tmp_path / 'a.png')))
    both = _png(
        plot_training_curves({
            'A': str(run_a),
            'B': str(run_b)
        }, str(tmp_path / 'ab.png')))
    assert both.shape == single.shape
    assert not np.array_equal(both, single)


def test_plot_errors(work_dirs, tmp_path):
    png = str(tmp_path / 'x.png')
    # an unknown metric
    with pytest.raises(KeyError, match='dice'):
        plot_training_curves(str(work_dirs[0]), png, metric_keys=['dice'])
    # an unknown training key
    with pytest.raises(KeyError, match='loss_ce'):
        plot_training_curves(str(work_dirs[0]), png, loss_keys=['loss_ce'])
    # smoothing weight outside [0, 1)
    with pytest.raises(ValueError, match='smooth'):
        plot_training_curves(str(work_dirs[0]), png, smooth=1.)
    # a folder without logs
    with pytest.raises(FileNotFoundError, match='No mmengine scalar log'):
        plot_training_curves(str(tmp_path), png)
    # a corrupt log line: the file and line are named
    bad = tmp_path / 'bad.json'
    bad.write_text('{"iter": 1, "loss": 1.0}\nnot json\n')
    with pytest.raises(ValueError, match='bad.json, line 2'):
        load_scalar_logs(str(bad))


def test_plot_curves_tool(work_dirs, tmp_path):
    run_a, run_b = work_dirs
    out = tmp_path / 'cli.png'
    proc = subprocess.run([
        sys.executable,
        str(TOOL),
        str(run_a),
        str(run_b), '--names', 'scratch', 'svd', '--out',
        str(out), '--smooth', '0.5', '--json',
        str(tmp_path / 'summary.json')
    ],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'scratch: 12 iterations, 3 epochs' in proc.stdout
    assert 'best abs_error' in proc.stdout
    _png(out)
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert set(summary) == {'scratch', 'svd'}
    assert summary['svd']['iters'] == 12
    # bad input: the tool exits with a message (run in this process)
    tool = load_script(TOOL)
    with pytest.raises(SystemExit, match='nothing does not exist'):
        tool.main([str(tmp_path / 'nothing'), '--out', str(out)])
    # one name per run
    with pytest.raises(SystemExit, match='2 runs but 1 --names'):
        tool.main([str(run_a), str(run_b), '--names', 'a'])
