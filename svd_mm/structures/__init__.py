from .voxel_data import VoxelData

__all__ = ['VoxelData']
