from .dicom_series import dicom_series_from, pydicom_test_file
from .model_utils import (Table2Classifier, all_zeros, check_norm_state,
                          is_block, is_norm, table2_complexity)

__all__ = [
    'all_zeros', 'check_norm_state', 'is_block', 'is_norm', 'Table2Classifier',
    'table2_complexity', 'dicom_series_from', 'pydicom_test_file'
]
