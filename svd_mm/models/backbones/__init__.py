from .p3d import P3D
from .resnet3d import ResNet3D
from .resnet3d_v1c import ResNet3DV1c

__all__ = ['ResNet3D', 'ResNet3DV1c', 'P3D']
