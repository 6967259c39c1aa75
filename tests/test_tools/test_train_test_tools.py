"""tools/train.py and tools/test.py on the CPU, on real images.

The 20 real CIFAR-10 images of the foolbox wheel are laid out as an
mmpretrain ``CustomDataset``; the tiny VDT config of ``tests/data/configs``
(ResNet3D-18 of width 4, GroupNorm, 3 epochs of 5 iterations) is trained with
the real scripts in subprocesses. Checked here: the same config and seed
give the same checkpoint and the same ``tools/test.py`` metrics, ``--amp``
trains in bfloat16 on the CPU, and bad input fails with a clear error.
"""
import importlib
import json
import math
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config

import svd_mm  # noqa: F401  (allow-lists mmengine's checkpoint types)
from svd_mm.apis import (check_launcher_env, close_dist, enable_amp,
                         enable_auto_scale_lr, find_resume_checkpoint,
                         register_toolbox, resolve_resume, setup_launcher)
from svd_mm.engine import CPUAmpOptimWrapper
from tests.helpers import tools
from tests.helpers.tools import LAUNCH_VARS
from tests.helpers.data_cache import layout_classification_set

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
CONFIG_DIR = osp.join(REPO, 'tests', 'data', 'configs')
CONFIG = osp.join(CONFIG_DIR, 'vdt_r3d18-w4-gn_1xb4-3e_foolbox-cifar10.py')
MMACTION_CONFIG = osp.join(
    CONFIG_DIR, 'vdt_r3d18-w4-gn_1xb4-3e_foolbox-cifar10_mmaction-scope.py')


@pytest.fixture(scope='module')
def foolbox_cifar(tmp_path_factory):
    """``images/*.png`` and ``meta/{train,val}.txt`` (``filename label``)
    for the 20 real CIFAR-10 images."""
    root = tmp_path_factory.mktemp('foolbox_cifar10')
    info = layout_classification_set(str(root), splits=('cifar10', ))
    assert info['num_images'] == 20
    lines = (root / 'meta' / 'train.txt').read_text().splitlines()
    assert lines[0].split() == ['cifar10_00_3.png', '3']
    return str(root)


def run_tool(args, data_root, check=True):
    return tools.run_tool(
        args, REPO, check=check, SVD_MM_TOOLS_DATA=data_root)


def train_losses(work_dir):
    """(epoch, iter, loss) of every logged training iteration."""
    records = tools.scalar_records(work_dir)
    return [(r['epoch'], r['iter'], r['loss']) for r in records if 'loss' in r]


def load_checkpoint(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def two_runs(foolbox_cifar, tmp_path_factory):
    """The same config and seed trained twice."""
    root = tmp_path_factory.mktemp('two_runs')
    work_dirs = [root / 'run_a', root / 'run_b']
    for work_dir in work_dirs:
        run_tool([TRAIN, CONFIG, '--work-dir', work_dir], foolbox_cifar)
    return work_dirs


def test_train_writes_a_checkpoint_each_epoch(two_runs):
    work_dir = two_runs[0]
    for epoch in (1, 2, 3):
        assert (work_dir / f'epoch_{epoch}.pth').is_file()
    assert find_resume_checkpoint(str(work_dir)) == str(work_dir /
                                                        'epoch_3.pth')
    ckpt = load_checkpoint(work_dir / 'epoch_3.pth')
    # 20 images, batch 4, 3 epochs
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (3, 15)
    state_dict = ckpt['state_dict']
    # the pseudo-3D model of the config: 3D stem, GroupNorm, 10-class fc
    assert state_dict['backbone.conv1.conv.weight'].shape == torch.Size(
        [4, 1, 7, 7, 7])
    assert state_dict['backbone.layer4.1.conv2.gn.weight'].shape == \
        torch.Size([32])
    assert state_dict['head.fc.weight'].shape == torch.Size([10, 32])
    losses = train_losses(work_dir)
    assert len(losses) == 15
    assert all(math.isfinite(loss) for _, _, loss in losses)
    # CrossEntropy over 10 classes starts near ln(10) = 2.30
    assert abs(losses[0][2] - math.log(10)) < 0.3


def test_same_config_and_seed_give_identical_metrics(two_runs, foolbox_cifar,
                                                     tmp_path):
    ckpts = [load_checkpoint(w / 'epoch_3.pth') for w in two_runs]
    for key, value in ckpts[0]['state_dict'].items():
        assert torch.equal(value, ckpts[1]['state_dict'][key]), key
    assert train_losses(two_runs[0]) == train_losses(two_runs[1])

    metrics = []
    for i, work_dir in enumerate(two_runs):
        out = tmp_path / f'metrics_{i}.json'
        proc = run_tool([
            TEST, CONFIG, work_dir / 'epoch_3.pth', '--work-dir',
            tmp_path / f'test_{i}', '--out', out
        ], foolbox_cifar)
        dumped = json.loads(out.read_text())
        # the last stdout line is the same metrics as JSON
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == dumped
        metrics.append(dumped)
    assert set(metrics[0]) == {'accuracy/top1', 'accuracy/top5'}
    assert metrics[0] == metrics[1]
    # 20 images: every accuracy is a multiple of 5 %
    assert metrics[0]['accuracy/top1'] % 5 == 0


def test_amp_trains_in_bfloat16_on_cpu(two_runs, foolbox_cifar, tmp_path):
    work_dir = tmp_path / 'amp'
    run_tool([
        TRAIN, CONFIG, '--work-dir', work_dir, '--amp', '--cfg-options',
        'train_cfg.max_epochs=1'
    ], foolbox_cifar)
    dumped = Config.fromfile(work_dir / osp.basename(CONFIG))
    assert dumped.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert dumped.optim_wrapper.dtype == 'bfloat16'
    amp_losses = [loss for _, _, loss in train_losses(work_dir)]
    fp32_losses = [loss for _, _, loss in train_losses(two_runs[0])][:5]
    assert len(amp_losses) == 5
    assert all(math.isfinite(loss) for loss in amp_losses)
    # bfloat16 rounding changes the losses, but only slightly
    assert amp_losses != fp32_losses
    assert max(abs(a - b) for a, b in zip(amp_losses, fp32_losses)) < 0.05
    ckpt = load_checkpoint(work_dir / 'epoch_1.pth')
    # the weights stay float32
    assert all(v.dtype == torch.float32 for v in ckpt['state_dict'].values()
               if v.is_floating_point())


def test_cpu_amp_optim_wrapper():
    model = torch.nn.Conv3d(1, 2, 3)
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.rand(2, 1, 3, 8, 6))
    assert out.dtype == torch.bfloat16
    assert out.shape == torch.Size([2, 2, 1, 6, 4])
    wrapper.update_params(out.float().mean())
    assert model.weight.dtype == torch.float32
    # CPU autocast has no float16 mode in mmengine
    with pytest.raises(ValueError, match='bfloat16'):
        CPUAmpOptimWrapper(
            dtype='float16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_enable_amp(monkeypatch):
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert enable_amp(cfg) == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    # the documented GPU path: float16 with dynamic loss scaling
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert enable_amp(cfg) == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert 'dtype' not in cfg.optim_wrapper
    # a wrapper of another kind is not silently replaced
    cfg = Config(dict(optim_wrapper=dict(type='ApexOptimWrapper')))
    with pytest.raises(ValueError, match='ApexOptimWrapper'):
        enable_amp(cfg)


def test_enable_auto_scale_lr():
    cfg = Config(dict(auto_scale_lr=dict(base_batch_size=4)))
    enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr.enable is True
    # no base batch size to scale from
    with pytest.raises(KeyError, match='base_batch_size'):
        enable_auto_scale_lr(Config(dict()))


def test_mmaction_scope_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    monkeypatch.setattr(sys, 'argv',
                        [TRAIN, MMACTION_CONFIG, '--work-dir',
                         str(tmp_path)])
    with pytest.raises(
            ValueError,
            match=r"default_scope='mmaction'.*"
            r"\['mmdet', 'mmpretrain', 'mmseg'\]"):
        runpy.run_path(TRAIN, run_name='__main__')


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_register_toolbox(scope):
    from mmengine.registry import DefaultScope
    before = DefaultScope.get_current_instance()
    assert register_toolbox(Config(dict(default_scope=scope))) == scope
    # the runner sets the scope later; the calling process keeps its own
    assert DefaultScope.get_current_instance() is before
    registry = importlib.import_module(f'{scope}.registry').MODELS
    # the toolbox's modules and svd_mm's are visible from its scope
    assert registry.get('ResNet3D').__module__.startswith('svd_mm.')
    assert registry.get('ResNet') is not None


def test_register_toolbox_refuses_a_missing_scope():
    # no default_scope at all
    with pytest.raises(ValueError, match='sets no default_scope'):
        register_toolbox(Config(dict(model=dict(type='ImageClassifier'))))


def test_launcher_without_its_environment(monkeypatch, tmp_path):
    for key in LAUNCH_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(
        sys, 'argv',
        [TRAIN, CONFIG, '--work-dir',
         str(tmp_path), '--launcher', 'pytorch'])
    with pytest.raises(
            RuntimeError,
            match='RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set'):
        runpy.run_path(TRAIN, run_name='__main__')
    # slurm without srun's variables
    with pytest.raises(RuntimeError, match='SLURM_PROCID'):
        check_launcher_env('slurm', environ=dict(SLURM_NTASKS='2'))
    # only MASTER_PORT missing: named alone
    with pytest.raises(RuntimeError, match='but MASTER_PORT is not set'):
        check_launcher_env(
            'pytorch',
            environ=dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1'))
    # a launcher the tools do not support
    with pytest.raises(ValueError, match='mpi'):
        check_launcher_env('mpi', environ={})
    check_launcher_env('none', environ={})


def test_resume_without_checkpoint(monkeypatch, foolbox_cifar, tmp_path):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    monkeypatch.setenv('SVD_MM_TOOLS_DATA', foolbox_cifar)
    work_dir = tmp_path / 'empty'
    work_dir.mkdir()
    monkeypatch.setattr(
        sys, 'argv', [TRAIN, CONFIG, '--work-dir',
                      str(work_dir), '--resume'])
    with pytest.raises(
            FileNotFoundError,
            match=f'{work_dir}/last_checkpoint does not exist: no '
            'checkpoint has been saved'):
        runpy.run_path(TRAIN, run_name='__main__')
    # nothing was trained from scratch
    assert not list(work_dir.iterdir())


def test_resolve_resume(tmp_path):
    cfg = Config(dict(work_dir=str(tmp_path)))
    assert resolve_resume(cfg, None) is None
    assert 'resume' not in cfg
    # auto-resume with an empty work dir
    with pytest.raises(FileNotFoundError, match='last_checkpoint'):
        resolve_resume(cfg, 'auto')
    # last_checkpoint names a file that is gone
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_9.pth'))
    with pytest.raises(FileNotFoundError, match='epoch_9.pth'):
        resolve_resume(cfg, 'auto')
    # an explicit checkpoint that does not exist
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        resolve_resume(cfg, str(tmp_path / 'missing.pth'))
    (tmp_path / 'epoch_9.pth').write_bytes(b'')
    assert resolve_resume(cfg, 'auto') == str(tmp_path / 'epoch_9.pth')
    assert cfg.resume is True and cfg.load_from == str(
        tmp_path / 'epoch_9.pth')


def test_setup_launcher_on_cpu(monkeypatch):
    import socket

    from mmengine.dist import get_world_size, is_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict())
    setup_launcher(cfg, 'none')
    assert cfg.launcher == 'none' and 'model_wrapper_cfg' not in cfg
    assert not is_distributed()

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(
            RANK='0',
            WORLD_SIZE='1',
            LOCAL_RANK='0',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(model_wrapper_cfg=dict(find_unused_parameters=True)))
    try:
        setup_launcher(cfg, 'pytorch')
        assert is_distributed() and get_world_size() == 1
        assert torch.distributed.get_backend() == 'gloo'
        assert cfg.launcher == 'pytorch'
        # the config's own DDP wrapper gets device_ids=None (CPU)
        assert cfg.model_wrapper_cfg == dict(
            find_unused_parameters=True, device_ids=None)
        # a second call does not initialise again
        cfg = Config(dict())
        setup_launcher(cfg, 'pytorch')
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=False)
    finally:
        close_dist()
    assert not is_distributed()
