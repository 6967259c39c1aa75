"""Plots of svd_mm results. matplotlib is imported only when plotting."""
from .froc_curve import plot_froc, read_froc_curve
from .overlay import (WINDOW_PRESETS, plot_slice_boxes, plot_volume_overlay,
                      resolve_window)
from .training_curves import (load_scalar_logs, plot_training_curves,
                              summarize_scalar_logs)

__all__ = [
    'plot_froc', 'read_froc_curve', 'WINDOW_PRESETS', 'plot_volume_overlay',
    'plot_slice_boxes', 'resolve_window', 'load_scalar_logs',
    'plot_training_curves', 'summarize_scalar_logs'
]
