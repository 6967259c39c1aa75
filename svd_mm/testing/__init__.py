from .model_utils import all_zeros, check_norm_state, is_block, is_norm

__all__ = ['all_zeros', 'check_norm_state', 'is_block', 'is_norm']
