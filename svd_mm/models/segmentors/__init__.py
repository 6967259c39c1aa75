"""3D segmentors, registered in mmseg's ``MODELS``; they are only defined
when mmseg is installed, so ``import svd_mm`` works with any one toolbox."""
__all__ = []

try:
    import mmseg  # noqa: F401
except ImportError:  # mmseg is optional
    pass
else:
    from .encoder_decoder_3d import EncoderDecoder3D  # noqa: F401
    from .pseudo_volume_encoder_decoder import \
        PseudoVolumeEncoderDecoder  # noqa: F401
    from .unet3d_genesis import UNet3DGenesis  # noqa: F401
    __all__ += [
        'EncoderDecoder3D', 'PseudoVolumeEncoderDecoder', 'UNet3DGenesis'
    ]
