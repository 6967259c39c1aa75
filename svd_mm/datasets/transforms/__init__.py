"""Data transforms. ``PackDetVolumeInputs`` is only defined when mmdet is
installed, so ``import svd_mm`` works with any one toolbox."""
from .center_crop_3d import CenterCrop3D
from .load_nodule_npz import LoadNoduleNpz
from .load_volume_array import LoadVolumeArray
from .load_volume_nifti import LoadVolumeNifti
from .random_crop_3d import RandomCrop3D
from .random_flip_3d import RandomFlip3D
from .random_rescale_3d import RandomRescale3D
from .random_rot90_3d import RandomRot90_3D
from .rgb_to_volume import RGBToVolume
from .scale_intensity import ScaleIntensity
from .slices_to_volume import SlicesToVolume

__all__ = [
    'CenterCrop3D', 'LoadNoduleNpz', 'LoadVolumeArray', 'LoadVolumeNifti',
    'RandomCrop3D', 'RandomFlip3D', 'RandomRescale3D', 'RandomRot90_3D',
    'RGBToVolume', 'ScaleIntensity', 'SlicesToVolume'
]

try:
    import mmdet  # noqa: F401
except ImportError:  # mmdet is optional
    pass
else:
    from .load_deeplesion_slices import LoadDeepLesionSlices  # noqa: F401
    from .pack_det_volume_inputs import PackDetVolumeInputs  # noqa: F401
    __all__ += ['LoadDeepLesionSlices', 'PackDetVolumeInputs']

try:
    import mmseg  # noqa: F401
except ImportError:  # mmseg is optional
    pass
else:
    from .pack_seg_volume_inputs import PackSegVolumeInputs  # noqa: F401
    __all__ += ['PackSegVolumeInputs']
