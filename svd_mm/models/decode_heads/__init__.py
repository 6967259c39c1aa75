"""3D decode heads, registered in mmseg's ``MODELS``; they are only defined
when mmseg is installed, so ``import svd_mm`` works with any one toolbox."""
__all__ = []

try:
    import mmseg  # noqa: F401
except ImportError:  # mmseg is optional
    pass
else:
    from .decode_head_3d import BaseDecodeHead3D  # noqa: F401
    from .fcn_head_3d import FCNHead3D  # noqa: F401
    from .unet_head_3d import UNetHead3D  # noqa: F401
    __all__ += ['BaseDecodeHead3D', 'FCNHead3D', 'UNetHead3D']
