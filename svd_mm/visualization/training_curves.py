"""Training curves from mmengine's scalar logs (matplotlib's Agg canvas).

mmengine's ``LocalVisBackend`` writes every logged scalar of a run to
``<work_dir>/<timestamp>/vis_data/scalars.json`` (the ``LoggerHook`` writes
the same lines to ``<timestamp>.json`` next to it), one JSON object per
line:

- training lines hold ``iter`` (the global iteration), ``step``, ``lr``,
  ``loss`` and its parts (e.g. ``decode.loss_ce``), timings and, in
  epoch-based runs, ``epoch``;
- validation lines hold the metrics (e.g. ``dice_per_case``,
  ``accuracy/top1``, ``froc/sens@...``), timings and ``step``: the epoch in
  epoch-based runs, the iteration otherwise.

A resumed run writes a new ``<timestamp>`` folder; :func:`load_scalar_logs`
reads all of them in time order and lets later lines replace earlier ones
of the same step, so a run killed and resumed gives one curve.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .overlay import save_png

__all__ = [
    'load_scalar_logs', 'split_scalar_logs', 'plot_training_curves',
    'summarize_scalar_logs'
]

#: Keys of the log lines that are not curves.
NON_CURVE_KEYS = ('step', 'iter', 'epoch', 'time', 'data_time', 'memory',
                  'eta')

Records = List[dict]


def _log_files(path: str) -> List[str]:
    """The scalar json files of a work dir / vis_data dir / json file, in
    time order (one per vis_data folder)."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'Log path {path} does not exist')
    is_vis_data = osp.basename(osp.normpath(path)) == 'vis_data'
    folders = [path] if is_vis_data else sorted(
        glob.glob(osp.join(path, '**', 'vis_data'), recursive=True))
    files = []
    for folder in folders:
        scalars = osp.join(folder, 'scalars.json')
        # LoggerHook's <timestamp>.json when the vis backend wrote none
        files += [scalars] if osp.isfile(scalars) else sorted(
            glob.glob(osp.join(folder, '*.json')))
    if not files:
        raise FileNotFoundError(
            f'No mmengine scalar log under {path}: expected '
            '<work_dir>/<timestamp>/vis_data/scalars.json (written by '
            "LocalVisBackend, e.g. visualizer.vis_backends=[dict(type="
            "'LocalVisBackend')])")
    # timestamps sort the runs (folder names are YYYYMMDD_HHMMSS)
    return sorted(files, key=lambda f: osp.basename(
        osp.dirname(osp.dirname(f))))


def load_scalar_logs(path: str) -> Records:
    """Read the scalar logs of a run.

    Args:
        path (str): A work dir (all its ``*/vis_data`` folders are read, in
            time order), a ``vis_data`` folder or one json file.

    Returns:
        list[dict]: The log lines; of the lines of the same kind
        (training / validation) and step, the last one read is kept. Each
        line gets ``'_kind'``: ``'train'`` (it has ``iter``) or ``'val'``.

    Raises:
        FileNotFoundError: If ``path`` holds no scalar log.
        ValueError: If a line is not JSON (the message names the file and
            line).
    """
    merged: Dict[Tuple[str, float], dict] = {}
    for file in _log_files(path):
        with open(file) as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{file}, line {number} is not JSON: '
                                     f'{e}') from e
                if not isinstance(record, dict):
                    raise ValueError(f'{file}, line {number} is not a JSON '
                                     'object')
                record['_kind'] = kind = 'train' if 'iter' in record else 'val'
                step = record.get('iter', record.get('step', number))
                merged[(kind, float(step))] = record
    return [merged[k] for k in sorted(merged)]


def split_scalar_logs(records: Records) -> Tuple[Records, Records]:
    """Split log lines into training and validation lines, each sorted by
    step."""
    train, val = [], []
    for record in records:
        kind = record.get('_kind', 'train' if 'iter' in record else 'val')
        (train if kind == 'train' else val).append(record)
    train.sort(key=lambda r: r['iter'])
    val.sort(key=lambda r: r.get('step', 0))
    return train, val


def _curve_keys(records: Records) -> List[str]:
    keys = []
    for record in records:
        for key, value in record.items():
            if key.startswith('_') or key in NON_CURVE_KEYS or \
                    key in keys or not isinstance(value, (int, float)) or \
                    isinstance(value, bool):
                continue
            keys.append(key)
    return keys


def _best(ys: np.ndarray, key: str) -> int:
    """Index of the best value: the minimum for keys naming a loss, error
    or FP count, else the maximum."""
    lower = any(word in key.lower() for word in ('loss', 'error', 'fp'))
    return int(np.argmin(ys) if lower else np.argmax(ys))


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average, starting at the first value."""
    from scipy.signal import lfilter
    return lfilter([1 - weight], [1, -weight], values,
                   zi=[weight * values[0]])[0]


def _series(records: Records, key: str, x_key: str):
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if isinstance(value, (int, float)) and np.isfinite(value):
            xs.append(record.get(x_key, record.get('step')))
            ys.append(float(value))
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def _as_runs(runs) -> Dict[str, Records]:
    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    items = list(runs.items()) if isinstance(runs, dict) else [
        (osp.basename(osp.normpath(str(p))), p) for p in runs]
    if not items:
        raise ValueError('plot_training_curves needs at least one run')
    out = {}
    for name, value in items:
        records = load_scalar_logs(str(value)) if isinstance(
            value, (str, os.PathLike)) else list(value)
        if not records:
            raise ValueError(f'Run {name!r} has no log lines')
        out[str(name)] = records
    return out


def summarize_scalar_logs(records: Records) -> dict:
    """Numbers of a run: iterations, epochs, the last training loss and the
    best value of each validation metric.

    Args:
        records (list[dict]): Lines of :func:`load_scalar_logs`.

    Returns:
        dict: ``iters`` (int), ``epochs`` (int or None), ``last_loss``
        (float or None) and ``best`` (metric -> ``{'value', 'step'}``; the
        maximum, or the minimum for keys naming a loss, error or FP count).
    """
    train, val = split_scalar_logs(records)
    out = dict(
        iters=int(train[-1]['iter']) if train else 0,
        epochs=int(train[-1]['epoch'])
        if train and 'epoch' in train[-1] else None,
        last_loss=float(train[-1]['loss'])
        if train and 'loss' in train[-1] else None,
        best={})
    for key in _curve_keys(val):
        xs, ys = _series(val, key, 'step')
        if not len(ys):
            continue
        i = _best(ys, key)
        out['best'][key] = dict(value=float(ys[i]), step=float(xs[i]))
    return out


def _panels(all_train: Records, all_val: Records,
            loss_keys: Optional[Sequence[str]],
            metric_keys: Optional[Sequence[str]], with_lr: bool,
            num_runs: int) -> Tuple[List[str], List[str]]:
    """The loss keys and the panels ('loss', metric keys, 'lr') to draw,
    checked against the keys the logs have."""
    if loss_keys is None:
        loss_keys = [k for k in _curve_keys(all_train) if 'loss' in k]
        if num_runs > 1 and 'loss' in loss_keys:
            loss_keys = ['loss']
    else:
        missing = [k for k in loss_keys if k not in _curve_keys(all_train)]
        if missing:
            raise KeyError(f'Training logs have no {missing}; their keys are '
                           f'{_curve_keys(all_train)}')
    available = [k for k in _curve_keys(all_val) if k != 'lr']
    if metric_keys is None:
        metric_keys = available[:6]
    else:
        missing = [k for k in metric_keys if k not in available]
        if missing:
            raise KeyError(f'Validation logs have no {missing}; their keys '
                           f'are {available}')
    rates = {r['lr'] for r in all_train if 'lr' in r}
    panels = (['loss'] if loss_keys else []) + list(metric_keys) + (
        ['lr'] if with_lr and len(rates) > 1 else [])
    if not panels:
        raise ValueError('Nothing to plot: the logs hold no loss, metric or '
                         'learning rate')
    return list(loss_keys), panels


def _plot_train_panel(ax, panel: str, train: Records, all_train: Records,
                      keys: Sequence[str], run_label: str,
                      run_index: Optional[int], smooth: float) -> None:
    """One run's training losses (``panel='loss'``) or learning rate
    against the iteration; colours by run (``run_index``) or, for a single
    run, by key."""
    for k_index, key in enumerate(keys):
        xs, ys = _series(train, key, 'iter')
        if not len(ys):
            continue
        color = f'C{(k_index if run_index is None else run_index) % 10}'
        label = f'{run_label}{key}'
        if panel == 'lr':
            ax.plot(xs, ys, color=color, lw=1.3, label=label,
                    drawstyle='steps-post')
        elif smooth > 0:
            ax.plot(xs, ys, color=color, alpha=0.25, lw=0.8)
            ax.plot(xs, _ema(ys, smooth), color=color, lw=1.5,
                    label=f'{label} (EMA {smooth:g})')
        else:
            ax.plot(xs, ys, color=color, lw=1.3, label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss' if panel == 'loss' else 'learning rate')
    if panel == 'lr':
        rates = [r['lr'] for r in all_train if r.get('lr', 0) > 0]
        if rates and max(rates) > 20 * min(rates):
            ax.set_yscale('log')
    ax.set_title('Training loss' if panel == 'loss' else 'Learning rate',
                 fontsize=11)
    if panel == 'loss' and train and 'epoch' in train[-1]:
        ends = [a['iter'] for a, b in zip(train, train[1:])
                if b['epoch'] != a['epoch']]
        if len(ends) <= 40:
            for end in ends:
                ax.axvline(end, color='0.8', lw=0.6, ls=':', zorder=0)


def _plot_val_panel(ax, key: str, val: Records, run_label: str, color: str,
                    epoch_based: bool) -> None:
    """One run's validation metric ``key``, its best value starred."""
    from matplotlib.ticker import MaxNLocator

    xs, ys = _series(val, key, 'step')
    if not len(ys):
        return
    ax.plot(xs, ys, 'o-', color=color, ms=3.5, lw=1.3,
            label=f'{run_label}{key}')
    i = _best(ys, key)
    ax.plot(xs[i], ys[i], '*', color=color, ms=12,
            label=f'{run_label}best {ys[i]:.4g} at '
            f'{"epoch" if epoch_based else "iter"} {xs[i]:g}')
    ax.set_xlabel('epoch' if epoch_based else 'iteration')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(key)
    ax.set_title(f'Validation: {key}', fontsize=11)


def plot_training_curves(runs: Union[str, Sequence[str], Dict[str, Union[
        str, Records]]],
                         out_file: str,
                         loss_keys: Optional[Sequence[str]] = None,
                         metric_keys: Optional[Sequence[str]] = None,
                         smooth: float = 0.,
                         with_lr: bool = True,
                         title: Optional[str] = None,
                         dpi: int = 100) -> str:
    """Plot losses, validation metrics and the learning rate of one or
    more runs, and write a PNG.

    Panels: the training losses against the iteration; one panel per
    validation metric (at most 6) against the epoch (epoch-based runs) or
    the iteration, its best value marked; the learning rate when it
    changes. Several runs (e.g. scratch vs. SVD pre-training) share the
    panels, one colour per run.

    Args:
        runs (str | list[str] | dict): A work dir or json file, several, or
            ``{name: work dir / json / lines}``.
        out_file (str): PNG path (its folder is created).
        loss_keys (Sequence[str], optional): Training keys to plot.
            Defaults to None: every key with ``loss`` in its name for one
            run, ``loss`` only for several.
        metric_keys (Sequence[str], optional): Validation keys to plot.
            Defaults to None (all).
        smooth (float): Exponential moving average weight in [0, 1) for the
            training curves; the raw curve is drawn faintly behind.
            Defaults to 0 (none).
        with_lr (bool): Add a learning-rate panel when the rate changes.
            Defaults to True.
        title (str, optional): Figure title. Defaults to None.
        dpi (int): Resolution of the PNG. Defaults to 100.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.figure import Figure

    if not 0 <= smooth < 1:
        raise ValueError(f'smooth must be in [0, 1), but got {smooth}')
    runs = _as_runs(runs)
    split = {name: split_scalar_logs(r) for name, r in runs.items()}
    all_train = [r for train, _ in split.values() for r in train]
    all_val = [r for _, val in split.values() for r in val]
    loss_keys, panels = _panels(all_train, all_val, loss_keys, metric_keys,
                                with_lr, len(runs))
    cols = 1 if len(panels) == 1 else 2
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(6.2 * cols, 3.6 * rows + 0.8), facecolor='white')
    epoch_based = all('epoch' in r for r in all_train) and bool(all_train)
    for n, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        for r_index, (name, (train, val)) in enumerate(split.items()):
            run_label = f'{name}: ' if len(runs) > 1 else ''
            if panel in ('loss', 'lr'):
                _plot_train_panel(ax, panel, train, all_train,
                                  loss_keys if panel == 'loss' else ['lr'],
                                  run_label, r_index if len(runs) > 1 else
                                  None, smooth)
            else:
                _plot_val_panel(ax, panel, val, run_label,
                                f'C{r_index % 10}', epoch_based)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc='best')
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if title else 1))
    return save_png(fig, out_file, dpi)
