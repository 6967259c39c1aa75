"""Helpers for the model tests."""
from typing import Iterable, Tuple

import torch
import torch.nn as nn
from torch.nn.modules import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

from svd_mm.models.backbones.resnet3d import BasicBlock3D, Bottleneck3D

__all__ = [
    'is_block', 'is_norm', 'all_zeros', 'check_norm_state',
    'Table2Classifier', 'table2_complexity'
]


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


class Table2Classifier(nn.Module):
    """A backbone, 3D global average pooling and a 1000-way fc: the
    classifier of the paper's Table II params/FLOPs.

    Args:
        backbone (nn.Module): A backbone with ``feat_dim`` whose last output
            is (N, feat_dim, D, H, W).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(backbone.feat_dim, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.backbone(x)[-1]).flatten(1))


def table2_complexity(backbone: nn.Module) -> Tuple[int, int]:
    """Parameters and FLOPs (mmengine's count: multiply-adds) of
    :class:`Table2Classifier` on ``backbone`` at the paper's input, an RGB
    image of 224x224 read as a VDT volume (N=1, C=1, D=3, 224, 224)."""
    from mmengine.analysis import get_model_complexity_info
    model = Table2Classifier(backbone).eval()
    with torch.no_grad():
        # (1, 3, 224, 224) is read as (N=1, C=1, D=3, H=224, W=224)
        info = get_model_complexity_info(
            model,
            input_shape=(1, 3, 224, 224),
            show_table=False,
            show_arch=False)
    return info['params'], info['flops']
