"""Inferencers on volumes, on mmengine's ``BaseInferencer``."""
from .base_volume_inferencer import (BaseVolumeInferencer,
                                     build_volume_pipeline, init_model)
from .volume_det_inferencer import VolumeDetInferencer
from .volume_seg_inferencer import VolumeSegInferencer

__all__ = [
    'BaseVolumeInferencer', 'VolumeSegInferencer', 'VolumeDetInferencer',
    'init_model', 'build_volume_pipeline'
]
