from .dicom_series import dicom_series_from, pydicom_test_file
from .froc_reference import froc_reference
from .model_utils import (Table2Classifier, all_zeros, check_norm_state,
                          is_block, is_norm, table2_complexity)
from .paper_tables import find_paper_tables, parse_paper_tables, split_pm

__all__ = [
    'all_zeros', 'check_norm_state', 'is_block', 'is_norm', 'Table2Classifier',
    'table2_complexity', 'find_paper_tables', 'parse_paper_tables', 'split_pm',
    'froc_reference', 'dicom_series_from', 'pydicom_test_file'
]
