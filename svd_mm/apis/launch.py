"""Shared logic of ``tools/train.py`` and ``tools/test.py``, for mmpretrain,
mmdet and mmseg configs alike: the config and its toolbox, the launcher
(with a gloo process group on the CPU, see :func:`setup_launcher`),
``--amp``, ``--auto-scale-lr``, ``--resume`` and the runner."""
import copy
import datetime
import importlib
import os
import os.path as osp
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    'TOOLBOX_SCOPES', 'LAUNCHER_ENV', 'load_config',
    'register_toolbox', 'set_work_dir', 'check_launcher_env', 'init_cpu_dist',
    'setup_launcher', 'close_dist', 'enable_amp', 'enable_auto_scale_lr',
    'find_resume_checkpoint', 'resolve_resume', 'build_runner'
]

#: The toolboxes whose configs the tools run (their ``default_scope``).
TOOLBOX_SCOPES = ('mmdet', 'mmpretrain', 'mmseg')

#: The environment variables each launcher needs (set by torchrun / srun).
LAUNCHER_ENV = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
}

_LAUNCH_HINT = {
    'pytorch':
    'Start it with tools/dist_train.sh CONFIG GPUS (or '
    'tools/dist_test.sh), i.e. python -m torch.distributed.run, which sets '
    'them',
    'slurm':
    'Start it with tools/slurm_train.sh (or tools/slurm_test.sh), '
    'i.e. inside srun, which sets them',
}


def load_config(config: Union[str, Path, Config, dict],
                cfg_options: Optional[dict] = None) -> Config:
    """Load a config (a file, or a copy of a Config or dict) and merge
    ``--cfg-options`` into it.

    Args:
        config (str | Path | Config | dict): The config file or object.
        cfg_options (dict, optional): ``key=value`` overrides (dotted keys),
            as parsed by :class:`~mmengine.config.DictAction`.
            Defaults to None.

    Returns:
        Config: The merged config.
    """
    if isinstance(config, (Config, dict)):
        cfg = copy.deepcopy(config) if isinstance(config, Config) else \
            Config(copy.deepcopy(dict(config)))
    elif not osp.isfile(config):
        raise FileNotFoundError(f'Config file {config} does not exist')
    else:
        cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options or {})
    return cfg


def register_toolbox(cfg: Config) -> str:
    """Register svd_mm and the modules of the config's toolbox.

    ``default_scope`` names the toolbox (mmpretrain, mmdet or mmseg); its
    ``register_all_modules(init_default_scope=False)`` is called, after
    ``import svd_mm`` (whose generic modules live in the mmengine root
    registries and are seen from every scope). The default scope itself is
    left to the runner, which sets it from ``cfg.default_scope`` when it is
    built, so calling this function does not change the scope of the
    calling process.

    Args:
        cfg (Config): The config.

    Returns:
        str: The default scope.
    """
    scope = cfg.get('default_scope', None)
    if scope not in TOOLBOX_SCOPES:
        what = ('sets no default_scope'
                if scope is None else f'has default_scope={scope!r}')
        raise ValueError(
            f'Config {cfg.filename} {what}; svd_mm tools run configs whose '
            f'default_scope is one of {sorted(TOOLBOX_SCOPES)}. Set e.g. '
            "default_scope = 'mmpretrain' in the config.")
    import svd_mm  # noqa: F401  (registers svd_mm's modules)
    try:
        utils = importlib.import_module(f'{scope}.utils')
    except ImportError as e:
        raise ImportError(
            f'Config {cfg.filename} has default_scope={scope!r}, but '
            f'{scope} cannot be imported ({e}). Install it, see '
            'tools/install_deps.sh.') from e
    utils.register_all_modules(init_default_scope=False)
    return scope


def set_work_dir(cfg: Config,
                 config_file: str,
                 work_dir: Optional[str] = None) -> str:
    """Set ``cfg.work_dir``: the CLI value, else the config's own, else
    ``./work_dirs/<config name>``.

    Returns:
        str: The work dir.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_file))[0])
    return cfg.work_dir


def check_launcher_env(launcher: str,
                       environ: Optional[Mapping[str, str]] = None) -> None:
    """Fail clearly when a launcher is asked for without its environment.

    Args:
        launcher (str): 'none', 'pytorch' or 'slurm'.
        environ (Mapping[str, str], optional): The environment.
            Defaults to ``os.environ``.
    """
    if launcher == 'none':
        return
    if launcher not in LAUNCHER_ENV:
        raise ValueError(f'launcher must be one of '
                         f"{['none'] + sorted(LAUNCHER_ENV)}, but got "
                         f'{launcher!r}')
    environ = os.environ if environ is None else environ
    missing = [k for k in LAUNCHER_ENV[launcher] if k not in environ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher} needs the environment variables '
            f'{", ".join(LAUNCHER_ENV[launcher])}, but '
            f'{", ".join(missing)} {"is" if len(missing) == 1 else "are"} '
            f'not set. {_LAUNCH_HINT[launcher]}, or use --launcher none for '
            'a single process.')


def init_cpu_dist(launcher: str, timeout: Optional[float] = None) -> None:
    """Initialise a gloo process group for a distributed run on the CPU.

    For ``'pytorch'``, rank and world size come from ``RANK`` and
    ``WORLD_SIZE`` and the rendezvous from ``MASTER_ADDR``/``MASTER_PORT``
    (all set by torchrun). For ``'slurm'`` they come from ``SLURM_PROCID``,
    ``SLURM_NTASKS``, ``SLURM_LOCALID`` and ``MASTER_ADDR`` (default: the
    first host of ``SLURM_NODELIST``) / ``MASTER_PORT`` (default 29500); they
    are exported as ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` so that
    everything downstream sees the torchrun variables. The launcher's
    environment is checked by :func:`setup_launcher`.

    Args:
        launcher (str): 'pytorch' or 'slurm'.
        timeout (float, optional): Seconds the collectives wait, as
            ``env_cfg.dist_cfg.timeout``. Defaults to None (torch default).
    """
    if launcher == 'slurm':
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:  # the first host, as mmengine
            proc = subprocess.run(
                ['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']],
                capture_output=True, text=True)
            if proc.returncode != 0 or not proc.stdout.split():
                raise RuntimeError(
                    'Could not resolve the master host of SLURM_NODELIST='
                    f"{os.environ['SLURM_NODELIST']!r} with scontrol "
                    f'({proc.stderr.strip()}); set MASTER_ADDR.')
            os.environ['MASTER_ADDR'] = proc.stdout.split()[0]
    torch_dist.init_process_group(
        backend='gloo',
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        timeout=None if timeout is None else datetime.timedelta(
            seconds=timeout))


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; without CUDA, start the run on the CPU.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its
    ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP; both
    fail without CUDA. So with ``launcher != 'none'`` and no CUDA, a gloo
    process group is initialised here (:func:`init_cpu_dist`; the runner,
    seeing it, does not initialise another) and ``cfg.model_wrapper_cfg``
    asks for ``MMDistributedDataParallel`` with ``device_ids=None`` (a
    config's own DDP wrapper gets ``device_ids=None`` added). With CUDA
    nothing but ``cfg.launcher`` changes: the runner initialises NCCL
    itself (``env_cfg.dist_cfg``).

    Args:
        cfg (Config): The config, changed in place.
        launcher (str): 'none', 'pytorch' or 'slurm'.
    """
    check_launcher_env(launcher)
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if not is_distributed():
        dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
        init_cpu_dist(launcher, timeout=dist_cfg.get('timeout', None))
    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper_type = MODEL_WRAPPERS.get(
            wrapper_cfg.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper_cfg.setdefault('device_ids', None)
    print_log(
        f'CUDA is not available: distributed run on the CPU with gloo, rank '
        f'{torch_dist.get_rank()} of {torch_dist.get_world_size()}.',
        logger='current')


def close_dist() -> None:
    """Destroy the default process group if one was initialised."""
    if is_distributed():
        torch_dist.destroy_process_group()


def enable_amp(cfg: Config) -> str:
    """Turn on automatic mixed precision (``--amp``).

    With CUDA: mmengine's ``AmpOptimWrapper``, float16 with dynamic loss
    scaling (a ``loss_scale`` of the config is kept). Without CUDA:
    :class:`~svd_mm.engine.CPUAmpOptimWrapper`, bfloat16 autocast.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        str: The optim wrapper type.
    """
    optim_wrapper = cfg.optim_wrapper
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper',
                            'CPUAmpOptimWrapper'):
        raise ValueError(
            f'--amp replaces optim_wrapper.type=OptimWrapper, but config '
            f'{cfg.filename} uses {wrapper_type!r}; set the mixed precision '
            'in the config instead.')
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        if wrapper_type == 'CPUAmpOptimWrapper':
            optim_wrapper.pop('dtype', None)  # float16, the GPU default
    else:
        optim_wrapper.type = 'CPUAmpOptimWrapper'
        optim_wrapper.pop('loss_scale', None)
        optim_wrapper.dtype = 'bfloat16'
    return optim_wrapper.type


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on mmengine's linear learning-rate scaling
    (``--auto-scale-lr``), which needs ``auto_scale_lr.base_batch_size``."""
    if cfg.get('auto_scale_lr', {}).get('base_batch_size', None) is None:
        raise KeyError(
            f'--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N) '
            f'in config {cfg.filename} (N: the total batch size that its '
            'learning rate was set for).')
    cfg.auto_scale_lr.enable = True


def find_resume_checkpoint(work_dir: str) -> str:
    """The checkpoint named by ``<work_dir>/last_checkpoint``.

    mmengine's ``CheckpointHook`` writes that file after each checkpoint has
    been saved, so a run killed while saving still points to the previous,
    complete checkpoint.

    Args:
        work_dir (str): The work dir of the run.

    Returns:
        str: The checkpoint path.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    checkpoint = find_latest_checkpoint(work_dir)
    if checkpoint is None:
        raise FileNotFoundError(
            f'--resume without a path resumes from the latest checkpoint of '
            f'the work dir, but {record} does not exist: no checkpoint has '
            f'been saved in {work_dir} yet. Pass a checkpoint '
            '(--resume PATH), check --work-dir, or drop --resume to train '
            'from scratch.')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'{record} names the checkpoint {checkpoint!r}, which does not '
            'exist. Pass a checkpoint with --resume PATH.')
    return checkpoint


def resolve_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Apply ``--resume``: ``'auto'`` resumes from
    :func:`find_resume_checkpoint` of ``cfg.work_dir``, a path from that
    checkpoint.

    Returns:
        str or None: The checkpoint resumed from.
    """
    if resume is None:
        return None
    if resume == 'auto':
        checkpoint = find_resume_checkpoint(cfg.work_dir)
    else:
        checkpoint = resume
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'--resume {checkpoint}: the checkpoint does not exist')
    cfg.resume = True
    cfg.load_from = checkpoint
    return checkpoint


def build_runner(cfg: Config) -> Runner:
    """Build ``Runner.from_cfg(cfg)``, or the registered runner named by
    ``cfg.runner_type``."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
