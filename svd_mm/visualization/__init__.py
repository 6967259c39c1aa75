"""Plots of svd_mm results. matplotlib is imported only when plotting."""
from .froc_curve import plot_froc

__all__ = ['plot_froc']
