from .checkpoint_safety import register_safe_checkpoint_types

__all__ = ['register_safe_checkpoint_types']
