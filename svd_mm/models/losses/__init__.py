from .dice_loss_3d import DiceLoss3D

__all__ = ['DiceLoss3D']
