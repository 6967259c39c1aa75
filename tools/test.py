"""Test (evaluate) a checkpoint with an mmpretrain, mmdet or mmseg config.

Runs ``test_dataloader`` through ``test_evaluator``, prints the metrics as
one JSON line and, with ``--out``, dumps them to a file (``.json``,
``.yaml`` or ``.pkl``)::

    python tools/test.py CONFIG CHECKPOINT [--out metrics.json]

Several processes: ``tools/dist_test.sh`` or ``tools/slurm_test.sh``.
"""
import argparse
import json
import os

import mmengine
from mmengine.config import DictAction
from mmengine.dist import is_main_process

from svd_mm.apis import (add_verbose_argument, build_runner,
                         check_launcher_env, close_dist, filter_known_warnings,
                         load_config, register_toolbox, set_work_dir,
                         setup_launcher)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model (mmpretrain, mmdet or '
        'mmseg config)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the logs and metrics')
    parser.add_argument(
        '--out', help='dump the metrics to this file (json, yaml or pkl)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes `--local-rank` (torch >= 2.0) or
    # `--local_rank`; torchrun sets the LOCAL_RANK environment variable.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_verbose_argument(parser)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    filter_known_warnings(args.verbose)
    check_launcher_env(args.launcher)
    if not os.path.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise FileNotFoundError(f'Checkpoint {args.checkpoint} does not exist')

    cfg = load_config(args.config, args.cfg_options)
    register_toolbox(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    setup_launcher(cfg, args.launcher)

    runner = build_runner(cfg)
    metrics = runner.test()
    if is_main_process():
        # np.float32 values (some metrics) are not JSON serialisable
        print(json.dumps(metrics, default=float))
        if args.out is not None:
            mmengine.dump(metrics, args.out)
    close_dist()


if __name__ == '__main__':
    main()
