"""svd_mm: SVD-Net (supervised 3D pre-training on 2D natural images via the
Variable Dimension Transform) as an OpenMMLab plugin.

``import svd_mm`` (or ``custom_imports=dict(imports=['svd_mm'])`` in a config)
registers every svd_mm module. Generic modules live in the mmengine root
registries and are therefore visible from mmpretrain, mmdet and mmseg scopes.
"""
from .version import __version__
from .utils import register_safe_checkpoint_types  # noqa: E402
from . import apis, datasets, engine, evaluation, models  # noqa: F401,E402
from . import structures, visualization  # noqa: F401,E402

register_safe_checkpoint_types()

__all__ = ['__version__']
