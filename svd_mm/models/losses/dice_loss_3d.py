"""Soft Dice loss for N-D (2D or 3D) segmentation logits."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

__all__ = ['DiceLoss3D']


@MODELS.register_module()
class DiceLoss3D(nn.Module):
    """Soft Dice loss on (N, K, D, H, W) logits and (N, D, H, W) labels.

    For each sample n (or the whole batch with ``batch_dice``) and class k,

    .. math::

        \\mathrm{Dice}_{n,k} = \\frac{2 \\sum_v p_{n,k,v} t_{n,k,v} + s}
        {\\sum_v p_{n,k,v} + \\sum_v t_{n,k,v} + s},

    where v runs over the voxels whose label is not ``ignore_index``,
    ``p`` are the softmax probabilities (a sigmoid for one-channel logits,
    where class 1 is the only class and its label is 1) and ``t`` the
    one-hot labels; ``s`` is ``smooth``. The loss is
    ``loss_weight * (1 - mean Dice)`` over samples and classes (class 0
    left out with ``exclude_background``). A class absent from a sample
    and not predicted there scores 1 (up to ``smooth``). Any number of
    spatial axes works, so it also serves 2D logits. Registered in the
    mmengine root ``MODELS`` and built by mmseg's decode heads next to
    ``CrossEntropyLoss``.

    Args:
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        ignore_index (int, optional): Label of voxels left out. The
            ``ignore_index`` a decode head passes to ``forward`` overrides
            it. Defaults to 255.
        smooth (float): Added to the numerator and the denominator.
            Defaults to 1e-5.
        exclude_background (bool): Whether to leave class 0 out of the
            mean (softmax only). Defaults to False.
        batch_dice (bool): Whether to sum over the batch before the ratio
            (one Dice per class, as nnU-Net) instead of one per sample and
            class. Defaults to False.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to enter the backward graph. Defaults to 'loss_dice'.

    Examples:
        >>> import torch
        >>> from svd_mm.models.losses import DiceLoss3D
        >>> logits = torch.tensor([[-10., 10.], [10., -10.]])  # K=2, 2 voxels
        >>> logits = logits.view(1, 2, 1, 1, 2)
        >>> label = torch.tensor([1, 1]).view(1, 1, 1, 2)
        >>> # class 0: 2 * 0 / (1 + 0); class 1: 2 * 1 / (1 + 2)
        >>> round(DiceLoss3D(smooth=0)(logits, label).item(), 4)
        0.6667
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: Optional[int] = 255,
                 smooth: float = 1e-5,
                 exclude_background: bool = False,
                 batch_dice: bool = False,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f'smooth must be >= 0, got {smooth}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.exclude_background = exclude_background
        self.batch_dice = batch_dice
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): (N, K, *spatial) logits; K=1 means a sigmoid.
            target (Tensor): (N, *spatial) integer labels.
            weight (Tensor, optional): (N, *spatial) voxel weights (e.g. of
                mmseg's OHEM sampler). Defaults to None.
            ignore_index (int, optional): Overrides ``self.ignore_index``.
                Defaults to None.
            **kwargs: Ignored (mmseg passes loss-specific arguments).

        Returns:
            Tensor: The scalar loss.
        """
        if pred.dim() != target.dim() + 1 or \
                pred.shape[2:] != target.shape[1:] or \
                pred.shape[0] != target.shape[0]:
            raise ValueError(
                f'{self.__class__.__name__} expects logits (N, K, *spatial) '
                'and labels (N, *spatial), but got shapes '
                f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if ignore_index is None:
            ignore_index = self.ignore_index
        num_classes = pred.shape[1]
        valid = torch.ones_like(target, dtype=pred.dtype)
        if ignore_index is not None:
            valid = (target != ignore_index).to(pred.dtype)
        if weight is not None:
            valid = valid * weight.to(pred.dtype)
        target = target.long() * (valid > 0).long()  # ignored -> class 0

        if num_classes == 1:
            prob = pred.sigmoid()
            onehot = (target == 1).unsqueeze(1).to(pred.dtype)
        else:
            prob = pred.softmax(dim=1)
            if target.max() >= num_classes or target.min() < 0:
                raise ValueError(
                    f'labels must lie in [0, {num_classes}) or be '
                    f'ignore_index={ignore_index}, but got values in '
                    f'[{target.min().item()}, {target.max().item()}]')
            onehot = F.one_hot(target, num_classes).movedim(-1,
                                                            1).to(pred.dtype)
            if self.exclude_background:
                prob, onehot = prob[:, 1:], onehot[:, 1:]
        valid = valid.unsqueeze(1)
        # sum over the voxels (and the batch for batch_dice)
        dims = tuple(range(2, pred.dim()))
        if self.batch_dice:
            dims = (0, ) + dims
        intersection = (prob * onehot * valid).sum(dims)
        denominator = (prob * valid).sum(dims) + (onehot * valid).sum(dims)
        dice = (2 * intersection + self.smooth) / (
            denominator + self.smooth).clamp_min(torch.finfo(pred.dtype).eps)
        return self.loss_weight * (1 - dice.mean())

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item, starting with ``loss_``."""
        return self._loss_name
