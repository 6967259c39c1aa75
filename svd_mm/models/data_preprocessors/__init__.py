from .volume_data_preprocessor import VolumeDataPreprocessor

__all__ = ['VolumeDataPreprocessor']

try:
    import mmseg  # noqa: F401
except ImportError:  # mmseg is optional
    pass
else:
    from .seg_volume_data_preprocessor import \
        SegVolumeDataPreprocessor  # noqa: F401
    __all__ += ['SegVolumeDataPreprocessor']
