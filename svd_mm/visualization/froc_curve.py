"""FROC curve plot (matplotlib's Agg canvas, no display needed)."""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .overlay import save_png

__all__ = ['plot_froc', 'read_froc_curve']

Curve = Tuple[Sequence[float], Sequence[float]]


def read_froc_curve(fps_per_image: Sequence[float],
                    sensitivity: Sequence[float],
                    fp_rates: Union[float, Sequence[float]]) -> np.ndarray:
    """Read the sensitivities of a FROC curve at given FPs per image.

    The curve is the polyline through its points, which may share their FP
    rate (a vertical step). At a rate equal to the rate of one or more
    points the first of them is read; between two rates the polyline is
    interpolated linearly; before the first and after the last point the
    curve is flat. This is the reading of
    ``scipy.interpolate.interp1d`` inside the curve, so both curves of
    :meth:`svd_mm.evaluation.metrics.FROCMetric.calculate` (the step curve
    of ``curve='reference'`` and the polyline of ``curve='max'``) give back
    the metric's sensitivities exactly.

    Args:
        fps_per_image (Sequence[float]): FPs per image of the points,
            non-decreasing.
        sensitivity (Sequence[float]): Sensitivity of each point.
        fp_rates (float | Sequence[float]): FPs per image to read.

    Returns:
        np.ndarray: The sensitivities at ``fp_rates``, float64, of the
        shape of ``fp_rates``.

    Examples:
        >>> from svd_mm.visualization import read_froc_curve
        >>> steps = ([0., 1., 1., 2., 2.], [.2, .2, .6, .6, .9])
        >>> read_froc_curve(*steps, [0.5, 1, 1.5, 2, 3]).tolist()
        [0.2, 0.2, 0.6, 0.6, 0.9]
        >>> read_froc_curve([0., 1.], [.2, .6], [0.5, 1]).tolist()
        [0.4, 0.6]
    """
    xs = np.asarray(fps_per_image, dtype=np.float64).reshape(-1)
    ys = np.asarray(sensitivity, dtype=np.float64).reshape(-1)
    rates = np.asarray(fp_rates, dtype=np.float64)
    if xs.shape != ys.shape or xs.size == 0:
        raise ValueError(
            'A FROC curve needs as many FPs per image as sensitivities (at '
            f'least one), but got {xs.size} and {ys.size}')
    if np.any(np.diff(xs) < 0):
        raise ValueError('FPs per image of a FROC curve must be '
                         'non-decreasing')
    first = np.searchsorted(xs, rates, side='left')
    at_point = np.minimum(first, xs.size - 1)
    exact = (first < xs.size) & (xs[at_point] == rates)
    # np.interp brackets a rate strictly between two distinct FP rates with
    # the neighbouring points even where points repeat an FP rate.
    return np.where(exact, ys[at_point], np.interp(rates, xs, ys))


def plot_froc(curves: Union[Curve, Dict[str, Curve]],
              out_file: str,
              fp_rates: Sequence[float] = (0.5, 1, 2, 4),
              max_fp: Optional[float] = None,
              title: str = 'FROC',
              log_x: bool = False,
              dpi: int = 100) -> str:
    """Draw one or more FROC curves and write them to a PNG file.

    Each curve is drawn as the polyline through its points (points that
    share their FP rate draw a vertical step), flat after its last point.
    Its sensitivities at ``fp_rates``, read with :func:`read_froc_curve`
    (the reading of :class:`~svd_mm.evaluation.metrics.FROCMetric`), are
    marked and listed in the legend with their mean. Neither the global
    matplotlib backend nor ``pyplot`` state is touched.

    Args:
        curves (tuple | dict[str, tuple]): ``(fps_per_image, sensitivity)``
            of one curve, or a dict ``{label: (fps_per_image,
            sensitivity)}``. FPs per image must be non-decreasing.
        out_file (str): PNG path to write (its folder is created).
        fp_rates (Sequence[float]): FPs per image to mark. Defaults to
            ``(0.5, 1, 2, 4)``.
        max_fp (float, optional): Right end of the x axis. Defaults to twice
            the largest of ``fp_rates``.
        title (str): Figure title. Defaults to ``'FROC'``.
        log_x (bool): Use a base-2 logarithmic x axis (points at 0 FPs are
            then not drawn). Defaults to False.
        dpi (int): Resolution of the PNG. Defaults to 100.

    Returns:
        str: ``out_file``.

    Examples:
        >>> import os.path as osp, tempfile
        >>> from svd_mm.visualization import plot_froc
        >>> png = osp.join(tempfile.mkdtemp(), 'froc.png')
        >>> plot_froc(([0., 0.5, 1., 2.], [0.4, 0.6, 0.7, 0.8]), png) == png
        True
        >>> osp.getsize(png) > 0
        True
    """
    from matplotlib.figure import Figure

    if not isinstance(curves, dict):
        curves = {'': curves}
    if not curves:
        raise ValueError('plot_froc needs at least one curve')
    fp_rates = np.asarray(fp_rates, dtype=np.float64)
    if max_fp is None:
        max_fp = 2 * float(fp_rates.max()) if fp_rates.size else 8.

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for label, (fps, sens) in curves.items():
        try:
            at = read_froc_curve(fps, sens, fp_rates)
        except ValueError as e:
            raise ValueError(f'Curve {label!r}: {e}') from None
        fps, sens = (np.asarray(v, np.float64).ravel() for v in (fps, sens))
        # Extend the curve flat to the right end of the axis, as the
        # sensitivity stays at its final value after the last FP.
        xs = np.append(fps, max(max_fp, fps[-1]))
        ys = np.append(sens, sens[-1])
        text = ', '.join(f'{v:.3f}' for v in at)
        name = f'{label} ' if label else ''
        line, = ax.plot(xs, ys, label=f'{name}[{text}] mean {at.mean():.3f}'
                        if at.size else label)
        if at.size:
            ax.plot(fp_rates, at, 'o', color=line.get_color())
    if log_x:
        ax.set_xscale('log', base=2)
        positive = fp_rates[fp_rates > 0]
        left = positive.min() / 2 if positive.size else max_fp / 64
        ax.set_xlim(left, max_fp)
    else:
        ax.set_xlim(0, max_fp)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('False positives per image')
    ax.set_ylabel('Sensitivity')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if fp_rates.size:
        ax.legend(loc='lower right', fontsize='small', title='sens @ ' +
                  ', '.join(f'{r:g}' for r in fp_rates) + ' FPs/img')
    fig.tight_layout()
    return save_png(fig, out_file, dpi)
