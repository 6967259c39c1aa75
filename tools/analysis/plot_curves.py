"""Plot the training curves of one or more runs from mmengine's scalar logs.

Each RUN is a work dir (every ``<timestamp>/vis_data/scalars.json`` in it is
read in time order, so a resumed run gives one curve), a ``vis_data``
folder or one json file. Panels: training losses, each validation metric
(best value marked) and the learning rate::

    python tools/analysis/plot_curves.py work_dirs/lits_scratch \\
        work_dirs/lits_svd --names scratch svd --out curves.png

It prints, per run, the iterations, epochs, last loss and best metrics
(``--json`` writes them too).
"""
import argparse
import json
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot losses and validation metrics of mmengine runs')
    parser.add_argument(
        'runs', nargs='+', help='work dirs, vis_data folders or json logs')
    parser.add_argument(
        '--names', nargs='+', default=None, help='legend name of each run')
    parser.add_argument(
        '--out', default='curves.png', help='PNG file (default: curves.png)')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=None,
        help='training keys to plot (default: every loss)')
    parser.add_argument(
        '--metrics',
        nargs='+',
        default=None,
        help='validation metrics to plot (default: all)')
    parser.add_argument(
        '--smooth',
        type=float,
        default=0.,
        help='EMA weight in [0, 1) for the training curves (default: 0)')
    parser.add_argument(
        '--no-lr', action='store_true', help='leave out the learning rate')
    parser.add_argument('--title', default=None, help='figure title')
    parser.add_argument('--dpi', type=int, default=100, help='resolution')
    parser.add_argument(
        '--json', default=None, help='also write the summaries to this file')
    from svd_mm.apis.quiet import add_verbose_argument
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from svd_mm.apis import filter_known_warnings
    filter_known_warnings(args.verbose)
    from svd_mm.visualization import (load_scalar_logs, plot_training_curves,
                                      summarize_scalar_logs)
    names = args.names or [None] * len(args.runs)
    if len(names) != len(args.runs):
        sys.exit(f'error: {len(args.runs)} runs but {len(names)} --names')
    try:
        runs = {}
        for name, path in zip(names, args.runs):
            name = name or path.rstrip('/').split('/')[-1]
            runs[name] = load_scalar_logs(path)
        out = plot_training_curves(
            runs,
            args.out,
            loss_keys=args.keys,
            metric_keys=args.metrics,
            smooth=args.smooth,
            with_lr=not args.no_lr,
            title=args.title,
            dpi=args.dpi)
    except (FileNotFoundError, ValueError, KeyError) as e:
        sys.exit(f'error: {e}')
    summaries = {}
    for name, records in runs.items():
        summary = summarize_scalar_logs(records)
        summaries[name] = summary
        epochs = f", {summary['epochs']} epochs" if summary['epochs'] else ''
        loss = (f", last loss {summary['last_loss']:.4g}"
                if summary['last_loss'] is not None else '')
        print(f"{name}: {summary['iters']} iterations{epochs}{loss}")
        for key, best in summary['best'].items():
            print(f"    best {key} {best['value']:.4g} at step "
                  f"{best['step']:g}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summaries, f, indent=1)
    print(f'saved to {out}')


if __name__ == '__main__':
    main()
