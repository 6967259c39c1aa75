"""Helpers for tests that run svd_mm's command-line tools as subprocesses."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import List, Optional, Sequence

__all__ = [
    'LAUNCH_VARS', 'config_header', 'tool_env', 'run_command', 'run_tool',
    'scalar_records', 'load_script'
]

# Launcher variables a test must not pass on: a tool run as a subprocess of
# a distributed test would otherwise think it is one of its ranks.
LAUNCH_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE',
               'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS',
               'SLURM_NODELIST', 'SLURM_LOCALID')


def config_header(path: str) -> str:
    """The leading comment block of a config file, joined into one line."""
    lines = []
    with open(path) as f:
        for line in f:
            if not line.startswith('#'):
                break
            lines.append(line.lstrip('# ').rstrip())
    return ' '.join(lines)


def tool_env(threads: int = 1, **extra: object) -> dict:
    """The environment for a tool run by a test.

    Without launcher variables, on the CPU path even on a machine with a GPU
    (gloo, bfloat16), with ``threads`` OpenMP threads per process (one is
    faster than two on a loaded 2-core machine) and ``PYTHON`` set to this
    interpreter (for the shell launchers).

    Args:
        threads (int): ``OMP_NUM_THREADS``. Defaults to 1.
        **extra: More variables, e.g. ``SVD_MM_TOOLS_DATA``; values are
            turned into strings.

    Returns:
        dict: The environment.
    """
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(
        CUDA_VISIBLE_DEVICES='',
        OMP_NUM_THREADS=str(threads),
        PYTHON=sys.executable)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_command(cmd: Sequence,
                cwd: str,
                timeout: int = 600,
                check: bool = True,
                threads: int = 1,
                **extra_env: object) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with :func:`tool_env`, capturing its output.

    Args:
        cmd (Sequence): The command; items are turned into strings.
        cwd (str): Working directory.
        timeout (int): Seconds before it is killed. Defaults to 600.
        check (bool): Assert that it succeeded, showing the end of its
            output otherwise. Defaults to True.
        threads (int): ``OMP_NUM_THREADS``. Defaults to 1.
        **extra_env: More environment variables (see :func:`tool_env`).

    Returns:
        subprocess.CompletedProcess: The finished process.
    """
    proc = subprocess.run([str(c) for c in cmd],
                          cwd=cwd,
                          env=tool_env(threads, **extra_env),
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def run_tool(args: Sequence, cwd: str,
             **kwargs: object) -> subprocess.CompletedProcess:
    """:func:`run_command` of ``python ARGS`` with this interpreter."""
    return run_command([sys.executable] + list(args), cwd, **kwargs)


def scalar_records(work_dir: str) -> List[dict]:
    """The records of the single ``vis_data/scalars.json`` of a run."""
    (scalars, ) = [
        osp.join(root, f) for root, _, files in os.walk(work_dir)
        for f in files if f == 'scalars.json'
    ]
    with open(scalars) as f:
        return [json.loads(line) for line in f]


def load_script(path: str,
                name: Optional[str] = None,
                register: bool = False) -> ModuleType:
    """Import a script that is not in a package (a tool, a benchmark, a
    test helper) as a module, to call its functions in the test process.

    Args:
        path (str): The ``.py`` file.
        name (str, optional): Module name. Defaults to the file's stem.
        register (bool): Also put it in ``sys.modules`` (needed when its
            functions are pickled, e.g. for worker processes).
            Defaults to False.

    Returns:
        ModuleType: The executed module.
    """
    path = str(path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
