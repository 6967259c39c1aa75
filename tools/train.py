"""Train an svd_mm model with an mmpretrain, mmdet or mmseg config.

The config's ``default_scope`` picks the toolbox. One process::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]

Several processes or nodes: ``tools/dist_train.sh`` (torchrun) or
``tools/slurm_train.sh`` (srun). Without CUDA a distributed run uses gloo on
the CPU.

SyncBN (GPU runs): ``--cfg-options sync_bn=torch`` makes mmengine convert
every BatchNorm of the model to ``torch.nn.SyncBatchNorm`` when it wraps the
model for a distributed run (``sync_bn=mmcv`` uses mmcv's ``SyncBatchNorm``);
it has no effect with ``--launcher none``.
"""
import argparse
import os

from mmengine.config import DictAction

from svd_mm.apis import (add_verbose_argument, build_runner,
                         check_launcher_env, close_dist, enable_amp,
                         enable_auto_scale_lr, filter_known_warnings,
                         load_config, register_toolbox, resolve_resume,
                         set_work_dir, setup_launcher)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a model (mmpretrain, mmdet or mmseg config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a value, resume '
        'from the latest checkpoint of the work dir (an error if there is '
        'none)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: float16 with dynamic loss scaling '
        'on GPU, bfloat16 autocast on CPU')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate linearly with the total batch size '
        '(needs auto_scale_lr.base_batch_size in the config)')
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
    # fail before the (slow) config and model building
    check_launcher_env(args.launcher)

    cfg = load_config(args.config, args.cfg_options)
    register_toolbox(cfg)
    # work_dir: CLI > config > ./work_dirs/<config name>
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    resolve_resume(cfg, args.resume)
    setup_launcher(cfg, args.launcher)

    runner = build_runner(cfg)
    runner.train()
    close_dist()


if __name__ == '__main__':
    main()
