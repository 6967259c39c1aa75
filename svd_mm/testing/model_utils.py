"""Helpers for the model tests."""
from typing import Iterable

import torch
import torch.nn as nn
from torch.nn.modules import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

from svd_mm.models.backbones.resnet3d import BasicBlock3D, Bottleneck3D

__all__ = ['is_block', 'is_norm', 'all_zeros', 'check_norm_state']


def is_block(module: nn.Module) -> bool:
    """Whether ``module`` is a ResNet3D residual block."""
    return isinstance(module, (BasicBlock3D, Bottleneck3D))


def is_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a batch norm (any variant) or a group norm."""
    return isinstance(module, (GroupNorm, _BatchNorm))


def all_zeros(module: nn.Module) -> bool:
    """Whether the weight (and bias, if any) of ``module`` are all zero."""
    weight_zero = torch.equal(module.weight.data,
                              torch.zeros_like(module.weight.data))
    bias = getattr(module, 'bias', None)
    bias_zero = bias is None or torch.equal(bias.data,
                                            torch.zeros_like(bias.data))
    return weight_zero and bias_zero


def check_norm_state(modules: Iterable[nn.Module], train_state: bool) -> bool:
    """Whether every batch norm in ``modules`` has ``training == train_state``.

    Args:
        modules (Iterable[nn.Module]): Modules to check, e.g.
            ``model.modules()``.
        train_state (bool): The expected ``training`` flag.

    Returns:
        bool: False if any batch norm is in the other mode.
    """
    for mod in modules:
        if isinstance(mod, _BatchNorm) and mod.training != train_state:
            return False
    return True
