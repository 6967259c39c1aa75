"""Distributed runs on the CPU (gloo) and resuming after a kill -9.

Everything runs the real scripts in subprocesses on the 20 real CIFAR-10
images of the foolbox wheel with the tiny VDT config of
``tests/data/configs`` (ResNet3D-18 of width 4 with GroupNorm, 5 iterations
an epoch, a seeded shuffling sampler, a pipeline without random transforms,
``randomness=dict(seed=0, deterministic=True)``):

- ``tools/dist_train.sh CONFIG 2`` with 2 images per process trains the same
  weights as one process with 4 images (GroupNorm is per sample; DDP averages
  the two halves of the global batch), up to float rounding of the gradient
  all-reduce: ``atol=1e-5``.
- ``tools/slurm_train.sh`` under a stand-in ``srun`` (2 tasks, Slurm's
  variables) does the same through ``--launcher slurm``.
- ``tools/dist_test.sh`` gives the metrics of ``tools/test.py``.
- A run killed with SIGKILL in the middle of epoch 2 and restarted with
  ``--resume`` ends with the checkpoint of an uninterrupted run, bitwise:
  weights, SGD momentum, scheduler state and counters. Bitwise holds on the
  CPU because every step is deterministic and the only randomness, the
  sampler order, is a function of (seed, epoch). A pipeline with random
  transforms in the main process (``num_workers=0``) would not be bitwise:
  mmengine re-seeds numpy on resume instead of restoring its state.
"""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import svd_mm  # noqa: F401  (allow-lists mmengine's checkpoint types)
from tests.helpers import tools
from tests.helpers.data_cache import layout_classification_set

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                  'vdt_r3d18-w4-gn_1xb4-3e_foolbox-cifar10.py')

# A hook that stops training at one iteration: it writes its pid to a marker
# file and sleeps until the test kills the process.
PAUSE_HOOK = '''
import os
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class PauseAtIterHook(Hook):

    def __init__(self, epoch, iter, marker):
        self.epoch, self.iter, self.marker = epoch, iter, marker

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.epoch == self.epoch and batch_idx == self.iter:
            with open(self.marker, 'w') as f:
                f.write(str(os.getpid()))
            while True:
                time.sleep(1)
'''

# Stand-ins for Slurm: ``srun`` records its arguments and starts --ntasks
# copies of the command with Slurm's variables; ``scontrol show hostname``
# names the local host.
FAKE_SRUN = '''#!/usr/bin/env bash
echo "$@" > "$SRUN_LOG"
ntasks=1
while [ $# -gt 0 ]; do
    case "$1" in
        -p) shift 2 ;;
        --ntasks=*) ntasks=${1#--ntasks=}; shift ;;
        -*) shift ;;
        *) break ;;
    esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \\
        SLURM_NODELIST='node[1]' "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
'''
FAKE_SCONTROL = '''#!/usr/bin/env bash
echo 127.0.0.1
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(cmd, data_root, **extra):
    return tools.run_command(cmd, REPO, SVD_MM_TOOLS_DATA=data_root, **extra)


def load_checkpoint(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_state_dicts_close(actual, expected, atol):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        diff = (actual[key].double() - value.double()).abs().max().item()
        assert diff <= atol, (key, diff)


@pytest.fixture(scope='module')
def foolbox_cifar(tmp_path_factory):
    """The 20 real CIFAR-10 images as an mmpretrain ``CustomDataset``
    (``images/``, ``meta/{train,val}.txt`` of ``filename label`` lines)."""
    root = tmp_path_factory.mktemp('foolbox_cifar10')
    info = layout_classification_set(str(root), splits=('cifar10', ))
    assert info['num_images'] == 20
    return str(root)


@pytest.fixture(scope='module')
def single_run(foolbox_cifar, tmp_path_factory):
    """One process, batch 4, 3 epochs, uninterrupted."""
    work_dir = tmp_path_factory.mktemp('single')
    run([
        sys.executable,
        osp.join(TOOLS, 'train.py'), CONFIG, '--work-dir', work_dir
    ], foolbox_cifar)
    return work_dir


def test_dist_train_matches_single_process(single_run, foolbox_cifar,
                                           tmp_path):
    work_dir = tmp_path / 'dist'
    proc = run([
        'bash',
        osp.join(TOOLS, 'dist_train.sh'), CONFIG, 2, '--work-dir', work_dir,
        '--cfg-options', 'train_dataloader.batch_size=2'
    ],
               foolbox_cifar,
               PORT=str(free_port()))
    assert 'distributed run on the CPU with gloo, rank 0 of 2' in (
        proc.stdout + proc.stderr)
    dist = load_checkpoint(work_dir / 'epoch_3.pth')
    single = load_checkpoint(single_run / 'epoch_3.pth')
    # each process saw 10 of the 20 images an epoch: 5 steps, as with 1x4
    assert (dist['meta']['epoch'], dist['meta']['iter']) == (3, 15)
    assert_state_dicts_close(dist['state_dict'], single['state_dict'], 1e-5)
    # and the weights did move during these 15 steps
    init = load_checkpoint(single_run / 'epoch_1.pth')['state_dict']
    moved = max(
        (single['state_dict'][k] - init[k]).abs().max().item() for k in init)
    assert moved > 1e-2


def test_dist_test_matches_single_process(single_run, foolbox_cifar, tmp_path):
    ckpt = single_run / 'epoch_3.pth'
    run([
        sys.executable,
        osp.join(TOOLS, 'test.py'), CONFIG, ckpt, '--work-dir',
        tmp_path / 'one', '--out', tmp_path / 'one.json'
    ], foolbox_cifar)
    run([
        'bash',
        osp.join(TOOLS, 'dist_test.sh'), CONFIG, ckpt, 2, '--work-dir',
        tmp_path / 'two', '--out', tmp_path / 'two.json'
    ],
        foolbox_cifar,
        PORT=str(free_port()))
    one = json.loads((tmp_path / 'one.json').read_text())
    two = json.loads((tmp_path / 'two.json').read_text())
    assert set(one) == {'accuracy/top1', 'accuracy/top5'}
    assert one == two


def test_slurm_train_on_cpu(single_run, foolbox_cifar, tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work_dir = tmp_path / 'slurm'
    run([
        'bash',
        osp.join(TOOLS, 'slurm_train.sh'), 'debug', 'svd', CONFIG, work_dir,
        '--cfg-options', 'train_dataloader.batch_size=2',
        'train_cfg.max_epochs=1'
    ],
        foolbox_cifar,
        PATH=f'{bin_dir}:{os.environ["PATH"]}',
        SRUN_LOG=str(tmp_path / 'srun_args'),
        GPUS='2',
        MASTER_PORT=str(free_port()))
    srun_args = (tmp_path / 'srun_args').read_text().split()
    assert srun_args[:8] == [
        '-p', 'debug', '--job-name=svd', '--gres=gpu:2', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=5', '--kill-on-bad-exit=1'
    ]
    assert srun_args[8:11] == [
        sys.executable, '-u',
        osp.join(TOOLS, 'train.py')
    ]
    assert '--launcher=slurm' in srun_args
    slurm = load_checkpoint(work_dir / 'epoch_1.pth')
    single = load_checkpoint(single_run / 'epoch_1.pth')
    assert (slurm['meta']['epoch'], slurm['meta']['iter']) == (1, 5)
    assert_state_dicts_close(slurm['state_dict'], single['state_dict'], 1e-5)


def test_resume_after_kill_matches_uninterrupted_run(single_run, foolbox_cifar,
                                                     tmp_path):
    plugin_dir = tmp_path / 'plugin'
    plugin_dir.mkdir()
    (plugin_dir / 'pause_hook.py').write_text(PAUSE_HOOK)
    marker = tmp_path / 'paused'
    # The test config plus the pause before the 3rd iteration of epoch 2.
    pause_config = tmp_path / 'pause_config.py'
    pause_config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['svd_mm', 'pause_hook'])\n"
        f"custom_hooks = [dict(type='PauseAtIterHook', epoch=1, iter=2, "
        f'marker={str(marker)!r})]\n')
    work_dir = tmp_path / 'work'
    train = [sys.executable, osp.join(TOOLS, 'train.py')]

    log = open(tmp_path / 'killed.log', 'w')
    proc = subprocess.Popen(
        train + [str(pause_config), '--work-dir',
                 str(work_dir)],
        cwd=REPO,
        env=tools.tool_env(
            SVD_MM_TOOLS_DATA=foolbox_cifar,
            PYTHONPATH=f'{plugin_dir}:{os.environ.get("PYTHONPATH", "")}'),
        stdout=log,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while not marker.exists():
            assert proc.poll() is None, (tmp_path / 'killed.log').read_text()
            assert time.time() < deadline, 'training never reached epoch 2'
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert marker.read_text() == str(proc.pid)
    assert 'Epoch(train) [2][2/5]' in (tmp_path / 'killed.log').read_text()

    # killed in epoch 2: only the checkpoint of epoch 1 exists
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(
        work_dir / 'epoch_1.pth')

    run(train + [CONFIG, '--work-dir', work_dir, '--resume'], foolbox_cifar)
    resumed = load_checkpoint(work_dir / 'epoch_3.pth')
    expected = load_checkpoint(single_run / 'epoch_3.pth')
    assert (resumed['meta']['epoch'], resumed['meta']['iter']) == (3, 15)
    for key, value in expected['state_dict'].items():
        assert torch.equal(resumed['state_dict'][key], value), key
    momentum = [
        s['momentum_buffer'] for s in expected['optimizer']['state'].values()
    ]
    resumed_momentum = [
        s['momentum_buffer'] for s in resumed['optimizer']['state'].values()
    ]
    assert len(momentum) == len(resumed_momentum) > 0
    assert all(torch.equal(a, b) for a, b in zip(resumed_momentum, momentum))
    assert resumed['optimizer']['param_groups'][0]['lr'] == \
        expected['optimizer']['param_groups'][0]['lr'] == pytest.approx(5e-3)
    assert resumed['param_schedulers'] == expected['param_schedulers']
