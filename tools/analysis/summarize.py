"""Summarise repeated runs as a table: mean +- std and t-test p-values.

Reads the ``seed*/metrics.json`` of the work dirs written by
``tools/run_repeats.py`` for several methods and prints (and saves as
Markdown and CSV) one row per method: the number of runs n and, for each
metric, the mean +- standard deviation over the runs and the p-value of the
independent two-sample t-test (``scipy.stats.ttest_ind``; Student's with
pooled variance, or Welch's with ``--welch``) of the method's runs against
those of the reference method, as in SVD-Net's tables.

Example::

    python tools/analysis/summarize.py \\
        SVD-Net=work_dirs/lidc_svd scratch=work_dirs/lidc_scratch \\
        Med3D=work_dirs/lidc_med3d --reference SVD-Net \\
        --metrics auc accuracy --out work_dirs/lidc_table

writes ``work_dirs/lidc_table.md`` and ``work_dirs/lidc_table.csv``.

With ``--paper`` each method is also compared with the paper: its row of
the paper is the metafile entry (``configs/**/metafile.yml``) of the config
that ``tools/run_repeats.py`` recorded in ``WORK_DIR/repeats.json``, or the
config or entry name given with ``--rows NAME=CONFIG``. For each metric the
paper reports, the table then shows your mean ± std in the paper's unit
(e.g. AUC in %), the paper's value (± std), the difference, your t-test
p-value and the paper's (printed for the table's main metric only)::

    # work dirs of run_repeats.py on the LIDC classification configs
    # cls3d_r3d18-{svd-in1k,scratch}_gap-linear_4xb32-100e_lidc-cls-48.py
    python tools/analysis/summarize.py Ours=work_dirs/ours \\
        Scratch=work_dirs/scratch --reference Ours --metrics binary/auc \\
        --paper
"""
import argparse
import csv
import glob
import io
import json
import math
import os.path as osp
import re
import sys
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

from svd_mm.apis import add_verbose_argument, filter_known_warnings
from svd_mm.utils.paper_results import (find_model, load_model_index,
                                        paper_metrics, paper_text)

Runs = Dict[str, List[Dict[str, float]]]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mean +- std of each metric over the seeds of each '
        'method and the t-test p-value against a reference method.')
    parser.add_argument(
        'methods',
        nargs='+',
        metavar='NAME=WORK_DIR',
        help='method name and the work dir root of its repeats (with '
        'seed*/metrics.json); a bare WORK_DIR is named after its folder')
    parser.add_argument(
        '--reference',
        help='method the others are tested against (default: the first)')
    parser.add_argument(
        '--metrics',
        nargs='+',
        help='metrics to show, in this order (default: those of the '
        'reference, sorted)')
    parser.add_argument(
        '--welch',
        action='store_true',
        help="Welch's t-test (unequal variances) instead of Student's")
    parser.add_argument(
        '--ddof',
        type=int,
        default=1,
        help='delta degrees of freedom of the std (default: 1, the sample '
        'standard deviation)')
    parser.add_argument(
        '--digits',
        type=int,
        default=2,
        help='decimals of mean and std (default: 2)')
    parser.add_argument(
        '--paper',
        action='store_true',
        help="show the paper's value of each metric beside yours, from the "
        'metafiles (configs/**/metafile.yml)')
    parser.add_argument(
        '--rows',
        nargs='+',
        default=[],
        metavar='NAME=CONFIG',
        help='with --paper: the config (or metafile entry name) of a method '
        'whose work dir has no repeats.json of tools/run_repeats.py')
    parser.add_argument(
        '--out',
        help='write OUT.md and OUT.csv (the CSV keeps full precision)')
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def load_runs(work_dir: str) -> List[Dict[str, float]]:
    """The numeric metrics of each seed of a run_repeats work dir.

    Args:
        work_dir (str): Root with ``seed{K}/metrics.json``.

    Returns:
        list[dict[str, float]]: One dict per seed, in seed order.
    """
    files = glob.glob(osp.join(work_dir, 'seed*', 'metrics.json'))

    def seed_of(path):
        match = re.search(r'seed(\d+)$', osp.basename(osp.dirname(path)))
        return int(match.group(1)) if match else -1

    files = sorted((f for f in files if seed_of(f) >= 0), key=seed_of)
    if not files:
        raise FileNotFoundError(
            f'no seed*/metrics.json in {work_dir}; run tools/run_repeats.py '
            'with --work-dir-root there first')
    runs = []
    for path in files:
        with open(path) as f:
            metrics = json.load(f)
        runs.append({
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        })
    return runs


def summarize(runs: Runs,
              reference: str,
              metrics: Optional[Sequence[str]] = None,
              equal_var: bool = True,
              ddof: int = 1) -> List[dict]:
    """Mean, std and t-test p-value of each metric of each method.

    Args:
        runs (dict[str, list[dict]]): Method name -> metrics of each run.
        reference (str): The method the others are tested against.
        metrics (Sequence[str], optional): Metrics to summarise. Defaults
            to None (the reference's metrics, sorted).
        equal_var (bool): Student's t-test (True) or Welch's (False).
            Defaults to True.
        ddof (int): Delta degrees of freedom of the std. Defaults to 1.

    Returns:
        list[dict]: One row per method (in the order of ``runs``):
        ``method``, ``n`` and ``{metric: dict(mean, std, p, values)}``;
        ``p`` is None for the reference and NaN where the test is undefined
        (e.g. zero variance in both groups).
    """
    if reference not in runs:
        raise KeyError(f'reference method {reference!r} is not one of '
                       f'{list(runs)}')
    if metrics is None:
        metrics = sorted(runs[reference][0])
    rows = []
    for method, method_runs in runs.items():
        row = dict(method=method, n=len(method_runs), metrics={})
        for metric in metrics:
            values = [run[metric] for run in method_runs if metric in run]
            if len(values) != len(method_runs):
                num_missing = len(method_runs) - len(values)
                raise KeyError(
                    f'metric {metric!r} is missing in {num_missing} run(s) '
                    f'of {method!r}; its runs have {sorted(method_runs[0])}')
            ref_values = [run[metric] for run in runs[reference]]
            p = None
            if method != reference:
                with warnings.catch_warnings():
                    # (nearly) constant groups: scipy warns, p may be NaN
                    warnings.simplefilter('ignore', RuntimeWarning)
                    p = float(
                        stats.ttest_ind(
                            values, ref_values, equal_var=equal_var).pvalue)
            std = float(np.std(values,
                               ddof=ddof)) if len(values) > ddof else math.nan
            row['metrics'][metric] = dict(
                mean=float(np.mean(values)), std=std, p=p, values=values)
        rows.append(row)
    return rows


def _p_text(p: Optional[float]) -> str:
    if p is None:
        return '(ref.)'
    if math.isnan(p):
        return 'n/a'
    return f'{p:.3g}'


def to_markdown(rows: List[dict], digits: int = 2) -> str:
    """The table as Markdown: ``mean ± std`` and ``p`` per metric."""
    metrics = list(rows[0]['metrics'])
    header = ['Method', 'n']
    for metric in metrics:
        header += [metric, f'p ({metric})']
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join(['---'] * len(header)) + '|'
    ]
    for row in rows:
        cells = [row['method'], str(row['n'])]
        for metric in metrics:
            m = row['metrics'][metric]
            cells += [
                f'{m["mean"]:.{digits}f} ± {m["std"]:.{digits}f}',
                _p_text(m['p'])
            ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def to_csv(rows: List[dict]) -> str:
    """The table as CSV with full precision: ``method, n`` and
    ``<metric>_mean, <metric>_std, <metric>_p`` per metric."""
    metrics = list(rows[0]['metrics'])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    stats_ = ('mean', 'std', 'p')
    with_paper = 'paper' in rows[0]
    if with_paper:
        stats_ += ('paper', 'paper_std', 'paper_diff', 'paper_p')
    writer.writerow(['method', 'n'] + [
        f'{metric}_{stat}' for metric in metrics for stat in stats_
    ])
    for row in rows:
        cells = [row['method'], row['n']]
        for metric in metrics:
            m = row['metrics'][metric]
            cells += [
                repr(m['mean']),
                repr(m['std']), '' if m['p'] is None else repr(m['p'])
            ]
            if with_paper:
                cells += _paper_csv(m, row['paper'][metric])
        writer.writerow(cells)
    return out.getvalue()


def method_config(work_dir: str) -> str:
    """The config that ``tools/run_repeats.py`` ran in ``work_dir``."""
    path = osp.join(work_dir, 'repeats.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} does not exist: name the config of this method with '
            '--rows NAME=CONFIG')
    with open(path) as f:
        return json.load(f)['config']


def add_paper(rows: List[dict], configs: Dict[str, str]) -> None:
    """Add the paper's numbers to the rows of :func:`summarize`.

    Each row gets ``paper_row`` (the metafile entry's one-line summary) and
    ``paper``: ``{metric: dict(value, std, p, scale, digits) or None}``, the
    paper's value of each summarised metric (None where the paper has none).

    Args:
        rows (list[dict]): The rows of :func:`summarize`.
        configs (dict[str, str]): Method -> config path or entry name.
    """
    models = load_model_index()
    for row in rows:
        entry = find_model(configs[row['method']], models)
        values = paper_metrics(entry)
        row['paper_row'] = f"{entry['Name']}: {paper_text(entry)}"
        row['paper'] = {m: values.get(m) for m in row['metrics']}


def _paper_cells(mine: dict, paper: Optional[dict],
                 digits: int) -> List[str]:
    """yours (paper unit), paper, difference, p, paper p."""
    if paper is None:  # yours as measured
        return [
            f"{mine['mean']:.{digits}f} ± {mine['std']:.{digits}f}", '–',
            '–',
            _p_text(mine['p']), '–'
        ]
    scale, d = paper['scale'], paper['digits']
    mean, std = mine['mean'] * scale, mine['std'] * scale
    ref = f"{paper['value']:.{d}f}"
    if paper['std'] is not None:
        ref += f" ± {paper['std']:.{d}f}"
    return [
        f'{mean:.{d}f} ± {std:.{d}f}', ref, f"{mean - paper['value']:+.{d}f}",
        _p_text(mine['p']), '–' if paper['p'] is None else
        f"{paper['p']:.2f}"
    ]


def to_markdown_paper(rows: List[dict], digits: int = 2) -> str:
    """The table with the paper's values (rows from :func:`add_paper`)."""
    metrics = list(rows[0]['metrics'])
    header = ['Method', 'n']
    for metric in metrics:
        header += [
            f'{metric} (yours)', f'{metric} (paper)', 'Δ', 'p', 'p (paper)'
        ]
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join(['---'] * len(header)) + '|'
    ]
    for row in rows:
        cells = [row['method'], str(row['n'])]
        for metric in metrics:
            cells += _paper_cells(row['metrics'][metric],
                                  row['paper'][metric], digits)
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines += [f"- {row['method']}: {row['paper_row']}" for row in rows]
    return '\n'.join(lines) + '\n'


def _paper_csv(mine: dict, paper: Optional[dict]) -> list:
    """paper value, its std, yours minus it (paper unit), paper p."""
    if paper is None:
        return [''] * 4
    return [
        repr(paper['value']), '' if paper['std'] is None else repr(
            paper['std']),
        repr(mine['mean'] * paper['scale'] - paper['value']),
        '' if paper['p'] is None else repr(paper['p'])
    ]


def parse_methods(specs: Sequence[str]) -> Dict[str, str]:
    """``NAME=WORK_DIR`` (or ``WORK_DIR``) -> {name: work dir}."""
    methods = {}
    for spec in specs:
        name, sep, work_dir = spec.partition('=')
        if not sep:
            work_dir = spec
            name = osp.basename(osp.normpath(spec))
        if name in methods:
            raise ValueError(f'method {name!r} is given twice')
        methods[name] = work_dir
    return methods


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    filter_known_warnings(args.verbose)
    try:
        methods = parse_methods(args.methods)
        runs = {name: load_runs(d) for name, d in methods.items()}
        reference = args.reference or next(iter(methods))
        rows = summarize(
            runs,
            reference,
            args.metrics,
            equal_var=not args.welch,
            ddof=args.ddof)
        if args.paper:
            configs = parse_methods(args.rows)
            unknown = set(configs) - set(methods)
            if unknown:
                raise KeyError(f'--rows names no method: {sorted(unknown)}')
            for name, work_dir in methods.items():
                configs.setdefault(name, method_config(work_dir))
            add_paper(rows, configs)
    except (FileNotFoundError, KeyError, ValueError) as e:
        sys.exit(f'error: {e}')
    markdown = (
        to_markdown_paper(rows, args.digits)
        if args.paper else to_markdown(rows, args.digits))
    test = "Welch's" if args.welch else "Student's"
    print(markdown + f'\nmean ± std (ddof={args.ddof}) over the seeds; p: '
          f"{test} two-sample t-test against {reference!r}")
    if args.out:
        with open(args.out + '.md', 'w', encoding='utf-8') as f:
            f.write(markdown)
        with open(args.out + '.csv', 'w', newline='') as f:
            f.write(to_csv(rows))
        print(f'saved {args.out}.md and {args.out}.csv')
    return rows


if __name__ == '__main__':
    main()
