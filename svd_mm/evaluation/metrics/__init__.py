from .binary_cls_metric import BinaryClsMetric
from .dice_metric_3d import DiceMetric3D

__all__ = ['BinaryClsMetric', 'DiceMetric3D']

try:
    import mmdet  # noqa: F401
except ImportError:  # mmdet is optional
    pass
else:
    from .froc_metric import FROCMetric  # noqa: F401
    __all__ += ['FROCMetric']
