"""Pictures of volumes with masks and boxes (matplotlib's Agg canvas, no
display needed).

:func:`plot_volume_overlay` draws the axial, coronal and sagittal planes
through a point of a CT / MR volume with the outlines (or a translucent
fill) of a predicted mask and, dashed, of the true one.
:func:`plot_slice_boxes` draws one slice with predicted and true boxes.

Both take the volume's RAS affine (:mod:`svd_mm.utils.medical_io`), so the
pictures have millimetre axes with the true voxel aspect (5 mm slices look
5 mm thick) and the patient's directions at the edges:

- the three planes are shown in the radiological convention: the volume is
  first reoriented (by axis permutations and flips only) so that its axes
  point left, posterior and superior; axial slices then show the patient's
  right on the left of the picture and anterior at the top, coronal slices
  right on the left and superior at the top, sagittal slices anterior on
  the left and superior at the top;
- a single slice with boxes is shown as stored (the boxes are in its pixel
  grid), with the edge letters computed from the affine.

Intensities are windowed by :func:`resolve_window`.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'WINDOW_PRESETS', 'resolve_window', 'reorient_for_display',
    'plot_volume_overlay', 'plot_slice_boxes'
]

#: Common CT windows, (centre, width) in HU.
WINDOW_PRESETS = {
    'lung': (-600., 1500.),
    'mediastinum': (50., 350.),
    'soft_tissue': (40., 400.),
    'liver': (25., 450.),  # LiTS's [-200, 250] HU
    'bone': (400., 1800.),
    'brain': (40., 80.),
}

#: Widest coronal / sagittal panel shown, in multiples of its height.
MAX_ASPECT = 2.

#: Outline colours of the predicted classes 1, 2, ... (the true mask is
#: drawn in :data:`GT_COLOR`, dashed).
CLASS_COLORS = ('#ff3b30', '#1e90ff', '#ffcc00', '#ff00ff', '#00e5ff',
                '#ff8c00', '#9acd32', '#ffffff')
GT_COLOR = '#39ff14'

Window = Union[None, str, Sequence[float]]

# (first, last) letters of a world axis traversed in its positive RAS
# direction: x goes from the patient's left to right, y from posterior to
# anterior, z from inferior to superior.
_RAS_LETTERS = (('L', 'R'), ('P', 'A'), ('I', 'S'))


def resolve_window(window: Window,
                   image: Optional[np.ndarray] = None
                   ) -> Tuple[float, float, str]:
    """Turn a window into display limits.

    Args:
        window (tuple | str | None): (centre, width), a preset name of
            :data:`WINDOW_PRESETS`, or None for the 0.5 / 99.5 percentiles
            of ``image``.
        image (np.ndarray, optional): Intensities, for ``window=None``.

    Returns:
        tuple: ``(vmin, vmax, text)``, ``text`` describing the window.

    Examples:
        >>> resolve_window('lung')
        (-1350.0, 150.0, 'lung window C -600 / W 1500')
        >>> resolve_window((40, 400))[:2]
        (-160.0, 240.0)
    """
    name = ''
    if isinstance(window, str):
        if window not in WINDOW_PRESETS:
            raise KeyError(f'Unknown window {window!r}; presets are '
                           f'{sorted(WINDOW_PRESETS)}, or give (centre, '
                           'width)')
        name, window = window + ' window ', WINDOW_PRESETS[window]
    if window is None:
        if image is None:
            raise ValueError('window=None needs the image for its '
                             'percentiles')
        vmin, vmax = (float(v) for v in np.percentile(
            np.asarray(image, dtype=np.float32), (0.5, 99.5)))
        if vmax <= vmin:
            vmax = vmin + 1.
        return vmin, vmax, f'window {vmin:.0f} to {vmax:.0f} (percentiles)'
    if len(window) != 2 or not float(window[1]) > 0:
        raise ValueError(f'window must be (centre, width) with width > 0, '
                         f'but got {window}')
    centre, width = float(window[0]), float(window[1])
    return (centre - width / 2, centre + width / 2,
            f'{name}C {centre:g} / W {width:g}')


def reorient_for_display(affine: np.ndarray):
    """The axis permutation and flips that make a (D, H, W) volume point
    superior (D), posterior (H) and left (W).

    Args:
        affine (np.ndarray): (4, 4) RAS affine (voxel (i, j, k) to mm).

    Returns:
        tuple: ``(perm, flips, spacing)``: the reoriented array is
        ``np.flip(array.transpose(perm), flips)``; ``spacing`` is its
        (D, H, W) voxel size in mm.

    Examples:
        >>> import numpy as np
        >>> perm, flips, spacing = reorient_for_display(
        ...     np.diag([0.7, 0.7, 5., 1.]))  # i: right, j: anterior
        >>> perm, flips, spacing
        ((0, 1, 2), (1, 2), (5.0, 0.7, 0.7))
    """
    from nibabel.orientations import io_orientation, ornt_transform
    affine = np.asarray(affine, dtype=np.float64)
    # the (D, H, W) = (k, j, i) axes to world axes (z, y, x) pointing
    # (S, P, L), i.e. RAS signs (+1, -1, -1)
    to_display = ornt_transform(
        io_orientation(affine)[::-1], [[2, 1], [1, -1], [0, -1]])
    perm = tuple(int(a) for a in np.argsort(to_display[:, 0]))
    flips = tuple(n for n, p in enumerate(perm) if to_display[p, 1] < 0)
    norms = np.linalg.norm(affine[:3, :3], axis=0)[::-1]  # (D, H, W)
    return perm, flips, tuple(float(norms[p]) for p in perm)


def _to_display(array: np.ndarray, perm, flips) -> np.ndarray:
    out = np.asarray(array).transpose(perm)
    return np.flip(out, flips) if flips else out


def _index_to_display(index: Sequence[float], shape: Sequence[int], perm,
                      flips) -> Tuple[int, int, int]:
    return tuple(
        int(round(shape[p] - 1 - index[p] if n in flips else index[p]))
        for n, p in enumerate(perm))


def _default_index(masks: Sequence[Optional[np.ndarray]],
                   shape: Sequence[int]) -> Tuple[int, int, int]:
    """The centroid of the first non-empty mask's largest slice, or the
    volume's centre."""
    for mask in masks:
        fg = None if mask is None else np.asarray(mask) > 0
        if fg is not None and fg.any():
            d = int(np.argmax(fg.sum(axis=(1, 2))))
            hs, ws = np.nonzero(fg[d])
            return d, int(round(hs.mean())), int(round(ws.mean()))
    return tuple(s // 2 for s in shape)


def _zoom_half_width(zoom, masks, spacing) -> Optional[float]:
    """Half width (mm) of the zoomed row, or None for no zoom row."""
    if zoom is None or zoom is False:
        return None
    if zoom != 'auto':
        if not float(zoom) > 0:
            raise ValueError(f"zoom must be 'auto', None or a half width in "
                             f'mm > 0, but got {zoom!r}')
        return float(zoom)
    masks = [np.asarray(m) > 0 for m in masks if m is not None]
    foreground = np.logical_or.reduce(masks) if masks else None
    if foreground is None or not foreground.any():
        return None
    points = np.argwhere(foreground)
    extent_mm = (points.max(0) - points.min(0) + 1) * np.asarray(spacing)
    field_mm = np.asarray(foreground.shape) * np.asarray(spacing)
    if extent_mm[1:].max() > 0.25 * field_mm[1:].min():
        return None  # a large organ: the full planes show it well
    return float(max(1.5 * extent_mm.max(), 25.))


def _zoom_limits(centre: float, half: float, limits) -> Tuple[float, float]:
    """Limits of width ``2 * half`` around ``centre`` inside ``limits`` (kept
    in their order, e.g. (top, bottom) of an image axis)."""
    low, high = min(limits), max(limits)
    half = min(half, (high - low) / 2)
    start = min(max(centre - half, low), high - 2 * half)
    out = (start, start + 2 * half)
    return out if limits[0] <= limits[1] else out[::-1]


def _check_mask(mask, shape, name):
    if mask is None:
        return None
    mask = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, 'detach')
                      else mask)
    if mask.ndim == 4 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f'{name} of shape {tuple(mask.shape)} does not match '
                         f'the image of (D, H, W) {tuple(shape)}')
    return mask


def _class_name(label: int, class_names: Optional[Sequence[str]]) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return f'class {label}'


def _draw_mask(ax, mask2d, extent, origin, mode, alpha, labels, gt=False):
    from matplotlib.colors import to_rgba
    for n, label in enumerate(labels):
        region = mask2d == label
        if not region.any():
            continue
        color = GT_COLOR if gt else CLASS_COLORS[n % len(CLASS_COLORS)]
        if mode == 'alpha' and not gt:
            rgba = np.zeros(region.shape + (4, ), dtype=np.float32)
            rgba[region] = to_rgba(color, alpha)
            ax.imshow(rgba, extent=extent, origin=origin,
                      interpolation='nearest')
        else:
            ax.contour(region.astype(np.float32), [0.5], colors=[color],
                       linewidths=1.4, linestyles='--' if gt else '-',
                       extent=extent, origin=origin)


def _draw_edge_letters(ax, letters: Sequence[str]) -> None:
    """Write the patient directions (left, right, top, bottom) at the
    edges of an axes."""
    from matplotlib.patheffects import withStroke
    style = dict(color='yellow', fontsize=11, fontweight='bold',
                 transform=ax.transAxes,
                 path_effects=[withStroke(linewidth=2, foreground='black')])
    ax.text(0.02, 0.5, letters[0], ha='left', va='center', **style)
    ax.text(0.98, 0.5, letters[1], ha='right', va='center', **style)
    ax.text(0.5, 0.98, letters[2], ha='center', va='top', **style)
    ax.text(0.5, 0.02, letters[3], ha='center', va='bottom', **style)


def save_png(fig, out_file: str, dpi: int) -> str:
    """Write a matplotlib figure to ``out_file`` (a .png path, its folder
    created) and return the path."""
    if not str(out_file).lower().endswith('.png'):
        raise ValueError(f'out_file must be a .png path, but got {out_file}')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    return out_file


# name, cut axis, the display axes shown across and down, edge letters
_PLANES = (('Axial', 0, (2, 1), ('R', 'L', 'A', 'P')),
           ('Coronal', 1, (2, 0), ('R', 'L', 'S', 'I')),
           ('Sagittal', 2, (1, 0), ('A', 'P', 'S', 'I')))


def _planes(index: Sequence[int], shape: Sequence[int],
            spacing: Sequence[float]) -> List[dict]:
    """The axial, coronal and sagittal planes through the display voxel
    ``index`` of a display volume of ``shape`` and (z, y, x) ``spacing``:
    the 2D cut, extent and origin, axis labels, edge letters (left, right,
    top, bottom), title, crosshair (x, y) in mm, full width and height in
    mm."""
    planes = []
    for name, axis, across_down, letters in _PLANES:
        size = tuple(shape[a] * spacing[a] for a in across_down)
        cut = [slice(None)] * 3
        cut[axis] = index[axis]
        planes.append(dict(
            cut=tuple(cut), origin='upper' if axis == 0 else 'lower',
            extent=(0, size[0]) + (
                (size[1], 0) if axis == 0 else (0, size[1])),
            labels=tuple(f"{'zyx'[a]} (mm)" for a in across_down),
            letters=letters,
            title=f'{name}, slice {index[axis] + 1}/{shape[axis]}',
            cross=tuple((index[a] + .5) * spacing[a] for a in across_down),
            size=size))
    return planes


def _overlay_figure(planes: List[dict], zoom: Optional[float]):
    """The figure and grid of the overlay: one row of planes (two with a
    zoom), and the width in mm each plane of the first row shows."""
    from matplotlib.figure import Figure

    # coronal / sagittal planes of a thin slab are cut to at most
    # MAX_ASPECT times their height, around the crossing point
    cut_widths = [
        w if n == 0 else min(w, MAX_ASPECT * h)
        for n, (w, h) in enumerate(p['size'] for p in planes)
    ]
    rows = 1 if zoom is None else 2
    ratios = [cut / p['size'][1] for cut, p in zip(cut_widths, planes)]
    if zoom is not None:  # the zoomed panels are square
        ratios = [max(r, 1.) for r in ratios]
    # panels 4 inches high, unless their total width would exceed 16
    # inches (thin volumes: wide coronal / sagittal planes)
    panel_h = max(min(4., 16. / sum(ratios)), 1.6)
    fig_w = panel_h * sum(ratios) * 1.4 + 1.5
    fig_h = panel_h * rows * 1.3 + 1.7
    fig = Figure(figsize=(fig_w, fig_h), facecolor='white')
    grid = fig.add_gridspec(
        rows, 3, width_ratios=ratios, wspace=0.3, hspace=0.3,
        left=0.6 / fig_w, right=1 - 1.8 / fig_w, top=1 - 0.95 / fig_h,
        bottom=0.85 / fig_h)
    return fig, grid, cut_widths


def _frame_panel(ax, plane: dict, row: int, cut_width: float,
                 zoom: Optional[float]) -> None:
    """Crosshair, limits (cut or zoomed), title, labels and edge letters
    of one plane's panel."""
    cross, extent, title = plane['cross'], plane['extent'], plane['title']
    ax.axvline(cross[0], color='#00bfff', lw=0.6, ls=':', alpha=0.8)
    ax.axhline(cross[1], color='#00bfff', lw=0.6, ls=':', alpha=0.8)
    xlim, ylim = extent[:2], extent[2:]
    if row == 0 and cut_width < plane['size'][0]:
        xlim = _zoom_limits(cross[0], cut_width / 2, extent[:2])
        title = f'{title} (central {cut_width:.0f} mm)'
    if row == 1:
        xlim = _zoom_limits(cross[0], zoom, extent[:2])
        ylim = _zoom_limits(cross[1], zoom, extent[2:])
        title = f'{title.split(",")[0]}, zoom'
    ax.set(xlim=xlim, ylim=ylim, aspect='equal')
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(plane['labels'][0], fontsize=9)
    ax.set_ylabel(plane['labels'][1], fontsize=9)
    ax.tick_params(labelsize=8)
    _draw_edge_letters(ax, plane['letters'])


def _mask_legend(pred, gt, labels, class_names, mode, alpha) -> list:
    """Legend handles: each predicted and true label present, and a note
    when the prediction is empty."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for n, label in enumerate(labels):
        name = _class_name(label, class_names)
        color = CLASS_COLORS[n % len(CLASS_COLORS)]
        if pred is not None and (pred == label).any():
            handles.append(
                Patch(facecolor=color, alpha=alpha, label=f'predicted {name}')
                if mode == 'alpha' else Line2D(
                    [], [], color=color, lw=1.6, label=f'predicted {name}'))
        if gt is not None and (gt == label).any():
            handles.append(
                Line2D([], [], color=GT_COLOR, lw=1.6, ls='--',
                       label=f'true {name}'))
    if pred is not None and not (pred > 0).any():
        handles.append(Line2D([], [], color='none', label='prediction: empty'))
    return handles


def plot_volume_overlay(image: np.ndarray,
                        affine: np.ndarray,
                        out_file: str,
                        pred: Optional[np.ndarray] = None,
                        gt: Optional[np.ndarray] = None,
                        index: Optional[Sequence[int]] = None,
                        mode: str = 'contour',
                        window: Window = None,
                        class_names: Optional[Sequence[str]] = None,
                        title: Optional[str] = None,
                        alpha: float = 0.35,
                        zoom: Union[str, float, None] = 'auto',
                        unit: str = 'HU',
                        dpi: int = 100) -> str:
    """Draw the axial, coronal and sagittal planes through one voxel with
    the predicted (and true) masks, and write a PNG.

    Args:
        image (np.ndarray): (D, H, W) volume, e.g. CT in HU.
        affine (np.ndarray): (4, 4) RAS affine of the volume.
        out_file (str): PNG path (its folder is created).
        pred (np.ndarray, optional): (D, H, W) predicted labels, 0 the
            background. Defaults to None.
        gt (np.ndarray, optional): (D, H, W) true labels, drawn as dashed
            outlines. Defaults to None.
        index (Sequence[int], optional): (d, h, w) voxel of the input where
            the planes cross. Defaults to None: the centroid of the largest
            slice of ``gt`` (else of ``pred``, else the volume's centre).
        mode (str): ``'contour'`` (outlines) or ``'alpha'`` (translucent
            fill) for ``pred``. Defaults to 'contour'.
        window (tuple | str | None): See :func:`resolve_window`.
            Defaults to None.
        class_names (Sequence[str], optional): Names of the labels (index 0
            the background) for the legend. Defaults to None.
        title (str, optional): Figure title. Defaults to None.
        alpha (float): Opacity of the fill in ``'alpha'`` mode.
            Defaults to 0.35.
        zoom (str | float | None): A second row with the same planes
            zoomed on the crossing point, ``zoom`` mm on each side of it;
            ``'auto'`` adds it when the masks are small (in-plane extent
            below a quarter of the field of view), 1.5 times their extent
            (at least 25 mm) on each side; None never. Defaults to 'auto'.
        unit (str): Unit of the intensities for the colour bar.
            Defaults to 'HU'.
        dpi (int): Resolution of the PNG. Defaults to 100.

    Returns:
        str: ``out_file``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f'image must be a (D, H, W) volume, but got shape '
                         f'{image.shape}')
    if mode not in ('contour', 'alpha'):
        raise ValueError(f"mode must be 'contour' or 'alpha', got {mode!r}")
    shape = image.shape
    pred = _check_mask(pred, shape, 'pred')
    gt = _check_mask(gt, shape, 'gt')
    vmin, vmax, window_text = resolve_window(window, image)
    perm, flips, (sz, sy, sx) = reorient_for_display(affine)
    if index is None:
        index = _default_index([gt, pred], shape)
    if len(index) != 3 or not all(0 <= i < s for i, s in zip(index, shape)):
        raise ValueError(f'index must be a (d, h, w) voxel inside '
                         f'{tuple(shape)}, but got {tuple(index)}')
    d, h, w = _index_to_display(index, shape, perm, flips)
    img = _to_display(image, perm, flips)
    pred_d, gt_d = (None if m is None else _to_display(m, perm, flips)
                    for m in (pred, gt))
    labels = sorted(set().union(*(np.unique(m).tolist() for m in (pred, gt)
                                  if m is not None)) - {0})
    planes = _planes((d, h, w), img.shape, (sz, sy, sx))
    zoom = _zoom_half_width(zoom, [pred_d, gt_d], (sz, sy, sx))
    fig, grid, cut_widths = _overlay_figure(planes, zoom)
    for row in range(grid.nrows):
        for n, plane in enumerate(planes):
            ax = fig.add_subplot(grid[row, n])
            shown = ax.imshow(img[plane['cut']], cmap='gray', vmin=vmin,
                              vmax=vmax, extent=plane['extent'],
                              origin=plane['origin'], interpolation='nearest')
            for mask, is_gt in ((pred_d, False), (gt_d, True)):
                if mask is not None:
                    _draw_mask(ax, mask[plane['cut']], plane['extent'],
                               plane['origin'], mode, alpha, labels,
                               gt=is_gt)
            _frame_panel(ax, plane, row, cut_widths[n], zoom)
            if n == 2:
                bar = fig.colorbar(shown,
                                   cax=ax.inset_axes([1.03, 0., 0.04, 1.]))
                bar.set_label(unit, fontsize=9)
                bar.ax.tick_params(labelsize=8)
    handles = _mask_legend(pred, gt, labels, class_names, mode, alpha)
    if handles:
        fig.legend(handles=handles, loc='lower center', fontsize=9,
                   ncol=min(len(handles), 4), frameon=False)
    heading = f'{title}\n' if title else ''
    fig.suptitle(
        f'{heading}{window_text}; voxel {sx:.3g} x {sy:.3g} x {sz:.3g} mm',
        fontsize=11)
    return save_png(fig, out_file, dpi)


def _edge_letters(vector: np.ndarray) -> Tuple[str, str]:
    """Letters at the start and end of an image axis with this RAS
    direction."""
    world = int(np.argmax(np.abs(vector[:3])))
    first, last = _RAS_LETTERS[world]
    return (first, last) if vector[world] > 0 else (last, first)


def _draw_boxes(ax, boxes: np.ndarray, scores: np.ndarray,
                labels: np.ndarray, gt_boxes: np.ndarray,
                class_names: Optional[Sequence[str]],
                pixel: Tuple[float, float], height: int) -> None:
    """Predicted boxes (best score on top, labelled) and dashed true
    boxes, in mm of (x, y) ``pixel`` size on a slice ``height`` pixels
    high."""
    from matplotlib.patches import Rectangle

    sx, sy = pixel
    order = np.argsort(-scores, kind='stable')

    def draw(box, **style):
        x1, y1, x2, y2 = box
        ax.add_patch(Rectangle((x1 * sx, y1 * sy), (x2 - x1) * sx,
                               (y2 - y1) * sy, fill=False, lw=1.5, **style))
        return x1, y1

    for box, score, label in zip(boxes[order], scores[order],
                                 labels[order]):
        color = CLASS_COLORS[int(label) % len(CLASS_COLORS)]
        x1, y1 = draw(box, edgecolor=color)
        name = _class_name(int(label), class_names) \
            if class_names is not None else ''
        # the label sits above the box, or inside it at the top edge
        inside = y1 < 0.06 * height
        ax.text(x1 * sx + (0.5 * sx if inside else 0),
                (y1 + (0.5 if inside else -1.5)) * sy,
                f'{name} {score:.2f}'.strip(), color=color, fontsize=8,
                va='top' if inside else 'bottom',
                bbox=dict(facecolor='black', alpha=0.5, pad=1, lw=0))
    for box in gt_boxes:
        draw(box, edgecolor=GT_COLOR, ls='--')


def plot_slice_boxes(image: np.ndarray,
                     affine: np.ndarray,
                     out_file: str,
                     boxes: Optional[np.ndarray] = None,
                     scores: Optional[np.ndarray] = None,
                     labels: Optional[np.ndarray] = None,
                     gt_boxes: Optional[np.ndarray] = None,
                     class_names: Optional[Sequence[str]] = None,
                     score_thr: float = 0.,
                     window: Window = None,
                     title: Optional[str] = None,
                     unit: str = 'HU',
                     dpi: int = 100) -> str:
    """Draw one slice with predicted and true boxes and write a PNG.

    Args:
        image (np.ndarray): (H, W) slice, e.g. CT in HU.
        affine (np.ndarray): (4, 4) RAS affine of its volume (for the pixel
            size and the edge letters).
        out_file (str): PNG path (its folder is created).
        boxes (np.ndarray, optional): (N, 4) predicted boxes (x1, y1, x2, y2)
            in pixels, pixel ``i`` spanning [i, i + 1) (mmdet's
            convention). Defaults to None.
        scores (np.ndarray, optional): (N, ) scores. Defaults to None.
        labels (np.ndarray, optional): (N, ) class indices. Defaults to
            None.
        gt_boxes (np.ndarray, optional): (M, 4) true boxes, dashed.
            Defaults to None.
        class_names (Sequence[str], optional): Names of the class indices.
            Defaults to None.
        score_thr (float): Boxes scoring below are not drawn.
            Defaults to 0.
        window (tuple | str | None): See :func:`resolve_window`.
            Defaults to None.
        title (str, optional): Figure title. Defaults to None.
        unit (str): Unit of the intensities. Defaults to 'HU'.
        dpi (int): Resolution of the PNG. Defaults to 100.

    Returns:
        str: ``out_file``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f'image must be an (H, W) slice, but got shape '
                         f'{image.shape}')
    affine = np.asarray(affine, dtype=np.float64)
    sx, sy = (float(v) for v in np.linalg.norm(affine[:3, :2], axis=0))
    boxes, gt_boxes = (np.asarray([] if b is None else b, np.float64).reshape(
        -1, 4) for b in (boxes, gt_boxes))
    scores = np.ones(len(boxes)) if scores is None else np.asarray(
        scores, dtype=np.float64).reshape(-1)
    labels = np.zeros(len(boxes), dtype=np.int64) if labels is None else \
        np.asarray(labels).reshape(-1)
    if not len(scores) == len(labels) == len(boxes):
        raise ValueError(f'boxes, scores and labels must have one row per '
                         f'box, but have {len(boxes)}, {len(scores)} and '
                         f'{len(labels)}')
    vmin, vmax, window_text = resolve_window(window, image)
    height, width = image.shape

    aspect = height * sy / (width * sx)
    fig = Figure(figsize=(7.5, 6. * aspect + 1.6), facecolor='white')
    bottom = 0.7 / (6. * aspect + 1.6)
    ax = fig.add_axes([0.1, bottom, 0.7, 1 - bottom - 0.9 /
                       (6. * aspect + 1.6)])
    extent = (0, width * sx, height * sy, 0)
    shown = ax.imshow(
        image, cmap='gray', vmin=vmin, vmax=vmax, extent=extent,
        origin='upper', interpolation='nearest')
    keep = scores >= score_thr
    _draw_boxes(ax, boxes[keep], scores[keep], labels[keep], gt_boxes,
                class_names, (sx, sy), height)
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel='x (mm)',
           ylabel='y (mm)')
    _draw_edge_letters(
        ax, _edge_letters(affine[:3, 0]) + _edge_letters(affine[:3, 1]))
    fig.colorbar(shown, cax=ax.inset_axes([1.03, 0., 0.04, 1.])).set_label(
        unit)
    handles = [
        Line2D([], [], color=CLASS_COLORS[0], lw=1.6,
               label=f'predicted (score >= {score_thr:g}): {keep.sum()}')
    ]
    if len(gt_boxes):
        handles.append(Line2D([], [], color=GT_COLOR, lw=1.6, ls='--',
                              label=f'true: {len(gt_boxes)}'))
    fig.legend(handles=handles, loc='lower center', ncol=2, fontsize=9,
               frameon=False)
    heading = f'{title}\n' if title else ''
    ax.set_title(f'{heading}{window_text}; pixel {sx:.3g} x {sy:.3g} mm',
                 fontsize=10, pad=8)
    return save_png(fig, out_file, dpi)
