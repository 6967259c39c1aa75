from .fraction_dataset import FractionDataset
from .lidc_nodule_dataset import LIDCNoduleDataset
from .lits_dataset import LiTSDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['FractionDataset', 'LIDCNoduleDataset', 'LiTSDataset']

try:
    import mmdet  # noqa: F401
except ImportError:  # mmdet is optional
    pass
else:
    from .deeplesion_dataset import DeepLesionDataset  # noqa: F401
    __all__ += ['DeepLesionDataset']
