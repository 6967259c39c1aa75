"""Data transforms. ``PackDetVolumeInputs`` is only defined when mmdet is
installed, so ``import svd_mm`` works with any one toolbox."""
from .rgb_to_volume import RGBToVolume

__all__ = ['RGBToVolume']

try:
    import mmdet  # noqa: F401
except ImportError:  # mmdet is optional
    pass
else:
    from .pack_det_volume_inputs import PackDetVolumeInputs  # noqa: F401
    __all__ += ['PackDetVolumeInputs']
