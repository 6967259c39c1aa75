"""Train and test one config with several seeds, one work dir per seed.

SVD-Net reports each result as the mean and standard deviation of 5 runs
with fixed seeds (and a t-test against the baseline,
``tools/analysis/summarize.py``). For each seed K this runs::

    tools/train.py CONFIG --work-dir ROOT/seedK [train args] \\
        --cfg-options [options] randomness.seed=K
    tools/test.py CONFIG CKPT --work-dir ROOT/seedK/test \\
        --out ROOT/seedK/metrics.json --cfg-options [options]

where CKPT is the last checkpoint of the run (``--ckpt last``, read from
``ROOT/seedK/last_checkpoint``) or its single ``best_*.pth`` (``--ckpt
best``, with ``save_best`` in the config). If the config sets the seed of
its training sampler (``train_dataloader.sampler.seed``), it is set to K as
well, so that the data order changes with the seed; the seed of a
``FractionDataset`` is left alone (every repeat uses the same data). A seed
whose ``metrics.json`` exists is skipped unless ``--rerun``. At the end
``ROOT/repeats.json`` lists the seeds and their metrics.

Examples::

    python tools/run_repeats.py configs/lidc/CONFIG.py --seeds 5
    python tools/run_repeats.py CONFIG --seed-list 0 1 2 \\
        --work-dir-root work_dirs/lidc_svd --amp
    python tools/run_repeats.py CONFIG --launcher pytorch --gpus 8
    GPUS=8 python tools/run_repeats.py CONFIG --launcher slurm \\
        --partition gpu

Arguments that this script does not know (e.g. ``--amp``) go to
``tools/train.py``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TOOLS_DIR)
if REPO not in sys.path:  # svd_mm from this checkout
    sys.path.insert(0, REPO)


def parse_args(
        argv: Optional[List[str]] = None
) -> Tuple[argparse.Namespace, List[str]]:
    parser = argparse.ArgumentParser(
        description='Train and test a config with several fixed seeds, one '
        'work dir per seed; unknown arguments go to tools/train.py.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--seeds',
        type=int,
        default=5,
        help='number of repeats, with the seeds 0 .. N-1 (default: 5)')
    parser.add_argument(
        '--seed-list',
        type=int,
        nargs='+',
        help='explicit seeds (instead of --seeds)')
    parser.add_argument(
        '--work-dir-root',
        help='parent of the seed{K} work dirs (default: '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='none: one process; pytorch: tools/dist_{train,test}.sh with '
        '--gpus processes; slurm: tools/slurm_{train,test}.sh on '
        '--partition (GPUS etc. from the environment)')
    parser.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='processes per node for --launcher pytorch (default: 1)')
    parser.add_argument('--partition', help='Slurm partition')
    parser.add_argument(
        '--ckpt',
        choices=['last', 'best'],
        default='last',
        help='checkpoint to test: the last one, or the best_*.pth written '
        "by save_best (default: 'last')")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides for both train and test (as in '
        'tools/train.py)')
    parser.add_argument(
        '--rerun',
        action='store_true',
        help='run the seeds that already have a metrics.json again')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the commands without running them')
    args, train_args = parser.parse_known_args(argv)
    if args.seed_list is not None:
        seeds = args.seed_list
    else:
        if args.seeds < 1:
            parser.error(f'--seeds must be at least 1, got {args.seeds}')
        seeds = list(range(args.seeds))
    if len(set(seeds)) != len(seeds):
        parser.error(f'the seeds must differ, got {seeds}')
    args.seed_values = seeds
    if args.launcher == 'slurm' and not args.partition:
        parser.error('--launcher slurm needs --partition')
    return args, train_args


def config_sets_sampler_seed(config: str, cfg_options: List[str]) -> bool:
    """Whether the config (with the overrides) sets
    ``train_dataloader.sampler.seed``."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config, import_custom_modules=False)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(
            parser.parse_args(['--cfg-options', *cfg_options]).cfg_options)
    sampler = cfg.get('train_dataloader', {}).get('sampler') or {}
    return sampler.get('seed') is not None


def train_command(args: argparse.Namespace, train_args: List[str],
                  work_dir: str, seed: int, options: List[str]) -> List[str]:
    """The command that trains one seed."""
    tail = [*train_args, '--cfg-options', *options]
    if args.launcher == 'pytorch':
        return [
            'bash',
            osp.join(TOOLS_DIR, 'dist_train.sh'), args.config,
            str(args.gpus), '--work-dir', work_dir, *tail
        ]
    if args.launcher == 'slurm':
        return [
            'bash',
            osp.join(TOOLS_DIR, 'slurm_train.sh'), args.partition,
            f'{_config_name(args.config)}_seed{seed}', args.config, work_dir,
            *tail
        ]
    return [
        sys.executable,
        osp.join(TOOLS_DIR, 'train.py'), args.config, '--work-dir', work_dir,
        *tail
    ]


def test_command(args: argparse.Namespace, checkpoint: str, work_dir: str,
                 seed: int, options: List[str]) -> List[str]:
    """The command that tests one seed's checkpoint."""
    tail = [
        '--work-dir',
        osp.join(work_dir, 'test'), '--out',
        osp.join(work_dir, 'metrics.json')
    ]
    if options:
        tail += ['--cfg-options', *options]
    if args.launcher == 'pytorch':
        return [
            'bash',
            osp.join(TOOLS_DIR, 'dist_test.sh'), args.config, checkpoint,
            str(args.gpus), *tail
        ]
    if args.launcher == 'slurm':
        return [
            'bash',
            osp.join(TOOLS_DIR, 'slurm_test.sh'), args.partition,
            f'{_config_name(args.config)}_seed{seed}_test', args.config,
            checkpoint, *tail
        ]
    return [
        sys.executable,
        osp.join(TOOLS_DIR, 'test.py'), args.config, checkpoint, *tail
    ]


def _config_name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def find_checkpoint(work_dir: str, which: str) -> str:
    """The last or the best checkpoint of a finished run.

    Args:
        work_dir (str): The run's work dir.
        which (str): ``'last'`` (named by ``last_checkpoint``) or
            ``'best'`` (the single ``best_*.pth``).

    Returns:
        str: The checkpoint path.
    """
    if which == 'last':
        from svd_mm.apis import find_resume_checkpoint
        return find_resume_checkpoint(work_dir)
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
    if len(best) != 1:
        raise FileNotFoundError(
            f'--ckpt best needs exactly one best_*.pth in {work_dir}, found '
            f'{len(best)} ({", ".join(map(osp.basename, best)) or "none"}); '
            'set default_hooks.checkpoint.save_best in the config (one '
            "metric) or use --ckpt last")
    return best[0]


def run(command: List[str], dry_run: bool) -> None:
    print('+ ' + ' '.join(command), flush=True)
    if dry_run:
        return
    env = dict(os.environ)
    env.setdefault('PYTHON', sys.executable)  # for the shell launchers
    proc = subprocess.run(command, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'exit code {proc.returncode}: '
                           f'{" ".join(command)}')


def main(argv: Optional[List[str]] = None) -> Dict[int, dict]:
    args, train_args = parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'error: config file {args.config} does not exist')
    root = args.work_dir_root or osp.join('work_dirs', _config_name(
        args.config))
    sampler_seed = config_sets_sampler_seed(args.config, args.cfg_options)
    results = {}
    for seed in args.seed_values:
        work_dir = osp.join(root, f'seed{seed}')
        metrics_file = osp.join(work_dir, 'metrics.json')
        if osp.isfile(metrics_file) and not args.rerun:
            print(f'seed {seed}: {metrics_file} exists, skipped (--rerun '
                  'runs it again)')
        else:
            options = [*args.cfg_options, f'randomness.seed={seed}']
            if sampler_seed:
                options.append(f'train_dataloader.sampler.seed={seed}')
            try:
                run(
                    train_command(args, train_args, work_dir, seed, options),
                    args.dry_run)
                checkpoint = (
                    osp.join(work_dir, f'<{args.ckpt} checkpoint>')
                    if args.dry_run else find_checkpoint(work_dir, args.ckpt))
                run(
                    test_command(args, checkpoint, work_dir, seed,
                                 args.cfg_options), args.dry_run)
            except (RuntimeError, FileNotFoundError) as e:
                sys.exit(f'error: seed {seed}: {e}')
            if args.dry_run:
                continue
        with open(metrics_file) as f:
            results[seed] = json.load(f)
        print(f'seed {seed}: {json.dumps(results[seed])}', flush=True)
    if not args.dry_run:
        summary = dict(
            config=args.config,
            seeds=args.seed_values,
            work_dirs={
                seed: osp.join(root, f'seed{seed}')
                for seed in args.seed_values
            },
            metrics=results)
        with open(osp.join(root, 'repeats.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        print(f'metrics of {len(results)} seeds in '
              f'{osp.join(root, "repeats.json")}')
    return results


if __name__ == '__main__':
    main()
