"""tools/run_repeats.py and tools/analysis/summarize.py.

Two 'methods' (the tiny VDT config of tests/data/configs, trained 1 epoch
on the 20 real CIFAR-10 images of the foolbox wheel, with two learning
rates) are run for 2 seeds each by run_repeats.py through the real
tools/train.py and tools/test.py; summarize.py then reads their work dirs,
and its means, standard deviations and p-values are checked against a
direct numpy / scipy computation on the same metrics.
"""
import csv
import json
import math
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from tests.helpers import tools
from tests.helpers.tools import load_script
from tests.helpers.data_cache import layout_classification_set

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUN_REPEATS = osp.join(REPO, 'tools', 'run_repeats.py')
SUMMARIZE = osp.join(REPO, 'tools', 'analysis', 'summarize.py')
CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                  'vdt_r3d18-w4-gn_1xb4-3e_foolbox-cifar10.py')
METHODS = {
    'lr0.05': ['train_cfg.max_epochs=1'],
    'lr0.01': ['train_cfg.max_epochs=1', 'optim_wrapper.optimizer.lr=0.01'],
}
SEEDS = (0, 1)


def _load(name, path):
    return load_script(path, name)


run_repeats = _load('run_repeats', RUN_REPEATS)
summarize = _load('summarize', SUMMARIZE)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('foolbox_cifar10')
    layout_classification_set(str(root), splits=('cifar10', ))
    return str(root)


@pytest.fixture(scope='module')
def repeats(data_root, tmp_path_factory):
    """Work dir roots of the two methods, run by tools/run_repeats.py."""
    root = tmp_path_factory.mktemp('repeats')
    env = tools.tool_env(SVD_MM_TOOLS_DATA=data_root)
    work_dirs, procs = {}, {}
    # the two methods side by side (one thread each)
    for method, options in METHODS.items():
        work_dirs[method] = str(root / method)
        procs[method] = subprocess.Popen([
            sys.executable, RUN_REPEATS, CONFIG, '--seed-list',
            *map(str, SEEDS), '--work-dir-root', work_dirs[method],
            '--cfg-options', *options
        ],
                                         cwd=REPO,
                                         env=env,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT,
                                         text=True)
    for method, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output[-5000:]
    return work_dirs


def _metrics(work_dir):
    return [
        json.load(open(osp.join(work_dir, f'seed{seed}', 'metrics.json')))
        for seed in SEEDS
    ]


def test_run_repeats_writes_one_work_dir_per_seed(repeats):
    work_dir = repeats['lr0.05']
    summary = json.load(open(osp.join(work_dir, 'repeats.json')))
    assert summary['seeds'] == list(SEEDS)
    metrics = _metrics(work_dir)
    assert summary['metrics'] == {str(s): m for s, m in zip(SEEDS, metrics)}
    assert set(metrics[0]) == {'accuracy/top1', 'accuracy/top5'}
    ckpts = [
        torch.load(
            osp.join(work_dir, f'seed{seed}', 'epoch_1.pth'),
            map_location='cpu',
            weights_only=True) for seed in SEEDS
    ]
    # another seed, another initialisation and data order
    assert not torch.equal(
        ckpts[0]['state_dict']['backbone.conv1.conv.weight'],
        ckpts[1]['state_dict']['backbone.conv1.conv.weight'])
    # randomness.seed and the config's sampler seed follow the repeat
    for seed, ckpt in zip(SEEDS, ckpts):
        assert ckpt['meta']['seed'] == seed
        dumped = open(osp.join(work_dir, f'seed{seed}',
                               osp.basename(CONFIG))).read()
        assert f'randomness = dict(deterministic=True, seed={seed})' in dumped
        assert (f"sampler=dict(seed={seed}, shuffle=True, "
                "type='DefaultSampler')") in dumped
        # 1 epoch (--cfg-options reach tools/train.py)
        assert ckpt['meta']['epoch'] == 1


def test_run_repeats_skips_finished_seeds(repeats, capsys):
    results = run_repeats.main([
        CONFIG, '--seed-list', *map(str, SEEDS), '--work-dir-root',
        repeats['lr0.05']
    ])
    out = capsys.readouterr().out
    assert out.count('exists, skipped') == 2
    assert results == dict(zip(SEEDS, _metrics(repeats['lr0.05'])))


# identical top-5 accuracies of the seeds: scipy warns about the variance
@pytest.mark.filterwarnings('ignore::RuntimeWarning')
def test_summarize_matches_scipy(repeats, tmp_path, capsys):
    out = str(tmp_path / 'table')
    rows = summarize.main(
        [f'{name}={work_dir}' for name, work_dir in repeats.items()] +
        ['--reference', 'lr0.05', '--out', out])
    assert [row['method'] for row in rows] == ['lr0.05', 'lr0.01']
    ref = _metrics(repeats['lr0.05'])
    other = _metrics(repeats['lr0.01'])
    for metric in ('accuracy/top1', 'accuracy/top5'):
        ref_values = [m[metric] for m in ref]
        other_values = [m[metric] for m in other]
        for row, values in zip(rows, (ref_values, other_values)):
            summary = row['metrics'][metric]
            assert row['n'] == 2
            assert summary['values'] == values
            assert summary['mean'] == pytest.approx(np.mean(values))
            assert summary['std'] == pytest.approx(
                np.std(values, ddof=1), nan_ok=True)
        assert rows[0]['metrics'][metric]['p'] is None
        expected_p = stats.ttest_ind(other_values, ref_values).pvalue
        assert rows[1]['metrics'][metric]['p'] == pytest.approx(
            expected_p, nan_ok=True)

    printed = capsys.readouterr().out
    markdown = open(out + '.md', encoding='utf-8').read()
    assert markdown in printed
    lines = markdown.splitlines()
    assert lines[0] == ('| Method | n | accuracy/top1 | p (accuracy/top1) | '
                        'accuracy/top5 | p (accuracy/top5) |')
    top1 = [m['accuracy/top1'] for m in other]
    assert lines[3].startswith(f'| lr0.01 | 2 | {np.mean(top1):.2f} ± '
                               f'{np.std(top1, ddof=1):.2f} | ')
    table = list(csv.DictReader(open(out + '.csv')))
    assert [r['method'] for r in table] == ['lr0.05', 'lr0.01']
    assert float(table[1]['accuracy/top1_mean']) == pytest.approx(
        np.mean(top1))
    assert table[0]['accuracy/top1_p'] == ''


def _fake_runs(root, name, values):
    """seed{K}/metrics.json with given {metric: [value per seed]}."""
    num = len(next(iter(values.values())))
    for seed in range(num):
        folder = root / name / f'seed{seed}'
        folder.mkdir(parents=True)
        metrics = {k: v[seed] for k, v in values.items()}
        metrics['note'] = 'not a number'
        (folder / 'metrics.json').write_text(json.dumps(metrics))
    return str(root / name)


def test_summarize_table_welch_and_errors(tmp_path, capsys):
    svd = _fake_runs(tmp_path, 'svd', {
        'auc': [91.0, 92.5, 90.5, 93.0, 92.0],
        'acc': [85, 86, 84, 87, 85]
    })
    scratch = _fake_runs(tmp_path, 'scratch', {
        'auc': [85.0, 88.0, 84.5, 86.0, 87.5],
        'acc': [80, 83, 79, 81, 82]
    })
    rows = summarize.main(
        [svd, f'from scratch={scratch}', '--metrics', 'auc', '--welch'])
    auc = rows[1]['metrics']['auc']
    assert rows[0]['method'] == 'svd'  # named after the folder
    assert auc['mean'] == pytest.approx(86.2)
    assert auc['std'] == pytest.approx(
        math.sqrt(((85 - 86.2)**2 + (88 - 86.2)**2 + (84.5 - 86.2)**2 +
                   (86 - 86.2)**2 + (87.5 - 86.2)**2) / 4))
    assert auc['p'] == pytest.approx(
        stats.ttest_ind([85.0, 88.0, 84.5, 86.0, 87.5],
                        [91.0, 92.5, 90.5, 93.0, 92.0],
                        equal_var=False).pvalue)
    printed = capsys.readouterr().out
    assert '| svd | 5 | 91.80 ± 1.04 | (ref.) |' in printed
    assert "Welch's two-sample t-test against 'svd'" in printed

    # an unknown metric
    with pytest.raises(SystemExit, match="metric 'dice' is missing"):
        summarize.main([svd, scratch, '--metrics', 'dice'])
    # a work dir without runs
    with pytest.raises(SystemExit, match='no seed\\*/metrics.json'):
        summarize.main([svd, str(tmp_path)])
    # an unknown reference
    with pytest.raises(SystemExit, match="reference method 'med3d'"):
        summarize.main([svd, scratch, '--reference', 'med3d'])
    # one name twice
    with pytest.raises(SystemExit, match="'svd' is given twice"):
        summarize.main([svd, f'svd={scratch}'])


def test_run_repeats_commands_for_launchers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('SVD_MM_TOOLS_DATA', str(tmp_path))
    root = str(tmp_path / 'runs')
    run_repeats.main([
        CONFIG, '--seeds', '2', '--work-dir-root', root, '--launcher',
        'pytorch', '--gpus', '4', '--dry-run', '--amp', '--cfg-options',
        'train_cfg.max_epochs=2'
    ])
    lines = [
        line for line in capsys.readouterr().out.splitlines()
        if line.startswith('+ ')
    ]
    tools = osp.join(REPO, 'tools')
    assert lines[2] == (
        f'+ bash {tools}/dist_train.sh {CONFIG} 4 --work-dir {root}/seed1 '
        '--amp --cfg-options train_cfg.max_epochs=2 randomness.seed=1 '
        'train_dataloader.sampler.seed=1')
    assert lines[3] == (
        f'+ bash {tools}/dist_test.sh {CONFIG} {root}/seed1/<last checkpoint>'
        f' 4 --work-dir {root}/seed1/test --out {root}/seed1/metrics.json '
        '--cfg-options train_cfg.max_epochs=2')
    assert not osp.exists(root)

    run_repeats.main([
        CONFIG, '--seed-list', '3', '--work-dir-root', root, '--launcher',
        'slurm', '--partition', 'gpu', '--dry-run', '--ckpt', 'best'
    ])
    lines = [
        line for line in capsys.readouterr().out.splitlines()
        if line.startswith('+ ')
    ]
    name = osp.splitext(osp.basename(CONFIG))[0]
    assert lines == [
        f'+ bash {tools}/slurm_train.sh gpu {name}_seed3 {CONFIG} '
        f'{root}/seed3 --cfg-options randomness.seed=3 '
        'train_dataloader.sampler.seed=3',
        f'+ bash {tools}/slurm_test.sh gpu {name}_seed3_test {CONFIG} '
        f'{root}/seed3/<best checkpoint> --work-dir {root}/seed3/test --out '
        f'{root}/seed3/metrics.json'
    ]


def test_run_repeats_errors(tmp_path):
    # a config that does not exist
    with pytest.raises(SystemExit, match='does not exist'):
        run_repeats.main([str(tmp_path / 'none.py')])
    # slurm needs a partition
    with pytest.raises(SystemExit):
        run_repeats.main([CONFIG, '--launcher', 'slurm'])
    # repeated seeds
    with pytest.raises(SystemExit):
        run_repeats.main([CONFIG, '--seed-list', '1', '1'])
    # --ckpt best without a best checkpoint
    with pytest.raises(FileNotFoundError, match='exactly one best_'):
        run_repeats.find_checkpoint(str(tmp_path), 'best')


# --------------------------------------------------------------------------
# --paper: the paper's values beside yours
# --------------------------------------------------------------------------
def _paper():
    from tests.helpers import find_paper_tables, parse_paper_tables
    path = find_paper_tables(REPO)
    if path is None:
        pytest.skip('../shared/PAPER_TABLES.md is not beside this checkout')
    return parse_paper_tables(path)


# identical top-5 accuracies of the seeds: scipy warns about the variance
@pytest.mark.filterwarnings('ignore::RuntimeWarning')
def test_summarize_paper_on_real_runs(repeats, tmp_path, capsys):
    """The tiny runs are the Table II recipe (VDT + ResNet3D-18): compared
    with the paper's ResNet3D-18 and ResNet3D-34 rows."""
    table2 = {r['model']: r for r in _paper()['Table II']}
    rows_of = {
        'lr0.05': 'configs/pretrain/imagenet/vdt_r3d18_8xb32-100e_in1k.py',
        'lr0.01': 'vdt_r3d34_8xb32-100e_in1k'
    }
    out = str(tmp_path / 'paper')
    rows = summarize.main(
        [f'{name}={work_dir}' for name, work_dir in repeats.items()] + [
            '--reference', 'lr0.05', '--paper', '--rows',
            *[f'{k}={v}' for k, v in rows_of.items()], '--out', out
        ])
    printed = capsys.readouterr().out
    for row, model in zip(rows, ('ResNet3D-18', 'ResNet3D-34')):
        top1 = row['paper']['accuracy/top1']
        assert top1['value'] == float(table2[model]['top-1'])
        assert row['paper']['accuracy/top5']['value'] == float(
            table2[model]['top-5'])
        mean = row['metrics']['accuracy/top1']['mean']  # % already
        line = next(line for line in printed.splitlines()
                    if line.startswith(f"| {row['method']} |"))
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[2].startswith(f'{mean:.2f} ± ')
        assert cells[3] == table2[model]['top-1']
        assert cells[4] == f"{mean - float(table2[model]['top-1']):+.2f}"
        assert cells[6] == '–'  # Table II has no t-test
    assert 'top-1' not in printed  # the metafile's names, not the file's
    assert '- lr0.01: vdt_r3d34_8xb32-100e_in1k: Table II "ResNet3D-34": ' \
        'Top 1 Accuracy 76.11, Top 5 Accuracy 92.71' in printed
    table = list(csv.DictReader(open(out + '.csv')))
    assert float(table[1]['accuracy/top1_paper']) == 76.11
    assert float(table[1]['accuracy/top1_paper_diff']) == pytest.approx(
        rows[1]['metrics']['accuracy/top1']['mean'] - 76.11)
    # without --rows the config comes from repeats.json: the tiny test
    # config is no table row
    with pytest.raises(SystemExit, match='has no entry in the metafiles'):
        summarize.main([f'lr0.05={repeats["lr0.05"]}', '--paper'])


def _repeats_json(work_dir, config):
    with open(osp.join(work_dir, 'repeats.json'), 'w') as f:
        json.dump(dict(config=config), f)


def test_summarize_paper_table4_p_values(tmp_path, capsys):
    """Rows named by repeats.json: fractions become %, the paper's p-value
    (of AUC in Table IV) stands next to yours."""
    table4 = {r['method']: r for r in _paper()['Table IV']}
    ours_auc, scratch_auc = [0.948, 0.951, 0.946], [0.925, 0.931, 0.928]
    ours = _fake_runs(tmp_path, 'ours', {
        'binary/auc': ours_auc, 'binary/f1': [0.72, 0.73, 0.71]})
    scratch = _fake_runs(tmp_path, 'scratch', {
        'binary/auc': scratch_auc, 'binary/f1': [0.70, 0.71, 0.72]})
    cls = ('configs/lidc/cls/'
           'cls3d_r3d18-{}_gap-linear_4xb32-100e_lidc-cls-48.py')
    _repeats_json(ours, cls.format('svd-in1k'))
    _repeats_json(scratch, cls.format('scratch'))
    rows = summarize.main([f'Ours={ours}', f'Scratch={scratch}', '--paper'])
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines()
                if line.startswith('| Scratch |'))
    cells = [c.strip() for c in line.strip('|').split('|')]
    auc = np.array(scratch_auc) * 100
    # binary/auc: yours, paper, difference, p, paper p
    assert cells[2] == f'{auc.mean():.2f} ± {np.std(auc, ddof=1):.2f}'
    assert cells[3] == table4['Scratch']['AUC']  # '92.75 ± 0.58'
    assert cells[4] == f'{auc.mean() - 92.75:+.2f}'
    p = stats.ttest_ind(scratch_auc, ours_auc).pvalue
    assert cells[5] == f'{p:.3g}'
    assert cells[6] == table4['Scratch']['p']  # '0.00'
    # binary/f1: the paper's value, no paper p-value (it tests AUC only)
    assert cells[8] == table4['Scratch']['F1']
    assert cells[11] == '–'
    assert rows[0]['paper']['binary/auc']['p'] is None  # Ours: reference
    # a metric the paper does not report for the row
    other = _fake_runs(tmp_path, 'other', {'binary/auc': [0.9, 0.91],
                                           'loss': [1.0, 1.1]})
    _repeats_json(other, cls.format('scratch'))
    rows = summarize.main([other, '--paper', '--metrics', 'loss'])
    assert rows[0]['paper'] == {'loss': None}
    assert '| other | 2 | 1.05 ± 0.07 | – | – | (ref.) | – |' in (
        capsys.readouterr().out)
    bare = _fake_runs(tmp_path, 'bare', {'binary/auc': [0.9, 0.91]})
    with pytest.raises(SystemExit, match='repeats.json does not exist'):
        summarize.main([bare, '--paper'])
    with pytest.raises(SystemExit, match='--rows names no method'):
        summarize.main([bare, '--paper', '--rows', f'x={cls}'])
