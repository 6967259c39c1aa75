"""Voxel-level annotations and predictions: mmengine's ``PixelData`` in 3D."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement, PixelData

__all__ = ['VoxelData']

ArrayLike = Union[torch.Tensor, np.ndarray]


class VoxelData(PixelData):
    """Data structure for voxel-level annotations or predictions.

    mmengine's ``PixelData`` holds (C, H, W) maps; ``VoxelData`` holds
    (C, D, H, W) maps, e.g. a label volume (1, D, H, W) or the logits
    (num_classes, D, H, W) of a 3D segmentor. It subclasses ``PixelData``
    so that mmseg's ``SegDataSample`` accepts it as ``gt_sem_seg``,
    ``pred_sem_seg`` and ``seg_logits``.

    Every data field

    - is a ``torch.Tensor`` or ``np.ndarray`` of shape (C, D, H, W); a
      (D, H, W) value gets C=1 (a leading axis), any other number of
      dimensions raises ``ValueError``;
    - has the same (D, H, W) as the other fields, which is ``shape``.

    Indexing takes up to three ints or slices for (D, H, W) (the channel
    axis is always kept whole); an int keeps its axis with size 1.

    Examples:
        >>> import torch
        >>> from svd_mm.structures import VoxelData
        >>> voxel_data = VoxelData(
        ...     metainfo=dict(case_id='lung1'),
        ...     data=torch.zeros(4, 6, 8, dtype=torch.long),
        ...     logits=torch.rand(3, 4, 6, 8))
        >>> voxel_data.shape
        (4, 6, 8)
        >>> voxel_data.data.shape
        torch.Size([1, 4, 6, 8])
        >>> voxel_data[1:3, :, 2].shape
        (2, 6, 1)
        >>> voxel_data[1:3, :, 2].logits.shape
        torch.Size([3, 2, 6, 1])
    """

    def __setattr__(self, name: str, value: ArrayLike) -> None:
        """Set a data field, adding the channel axis to a (D, H, W) value.

        Args:
            name (str): Name of the field.
            value (torch.Tensor | np.ndarray): A (C, D, H, W) or (D, H, W)
                map with the (D, H, W) of the fields already set.
        """
        if name in ('_metainfo_fields', '_data_fields'):
            # set once, then immutable: mmengine's own handling
            BaseDataElement.__setattr__(self, name, value)
            return
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f'{type(self).__name__}.{name} must be a torch.Tensor or '
                f'np.ndarray, but got {type(value).__name__}')
        if value.ndim == 3:
            value = value[None]
        elif value.ndim != 4:
            raise ValueError(
                f'{type(self).__name__}.{name} must have shape (C, D, H, W) '
                f'or (D, H, W), but got shape {tuple(value.shape)} '
                f'({value.ndim} dims)')
        shape = self.shape
        # replacing the only field may change the shape
        if shape not in (None, tuple(value.shape[-3:])) and \
                self._data_fields != {name}:
            raise ValueError(
                f'{type(self).__name__}.{name} of shape {tuple(value.shape)} '
                f'does not match the (D, H, W) = {shape} of the other fields '
                f'{sorted(self.keys())}')
        BaseDataElement.__setattr__(self, name, value)

    def __getitem__(
            self, item: Union[int, slice,
                              Sequence[Union[int, slice]]]) -> 'VoxelData':
        """Crop every field along (D, H, W).

        Args:
            item (int | slice | tuple[int | slice]): Indices of D, H and W
                (missing trailing axes are kept whole). An int keeps its
                axis with size 1.

        Returns:
            VoxelData: The cropped fields, with the same metainfo.
        """
        if not isinstance(item, tuple):
            item = (item, )
        shape = self.shape
        if shape is None:
            raise IndexError(f'Cannot index an empty {type(self).__name__}')
        if len(item) > 3:
            raise IndexError(
                f'{type(self).__name__} is indexed along (D, H, W) only, but '
                f'got {len(item)} indices {item}')
        slices: List[slice] = [slice(None)]  # keep the channel axis
        for axis, index in enumerate(item):
            if isinstance(index,
                          (int, np.integer)) and not isinstance(index, bool):
                size = shape[axis]
                if not -size <= index < size:
                    raise IndexError(f'Index {index} is out of range for axis '
                                     f"{'DHW'[axis]} of size {size}")
                index = int(index) % size
                slices.append(slice(index, index + 1))
            elif isinstance(index, slice):
                slices.append(index)
            else:
                raise TypeError(
                    f'{type(self).__name__} indices must be int or slice, '
                    f'but got {type(index).__name__}')
        return self.__class__(metainfo=self.metainfo, **{
            key: value[tuple(slices)] for key, value in self.items()})

    @property
    def shape(self) -> Optional[Tuple[int, int, int]]:
        """tuple[int] | None: (D, H, W) of the fields, None if there are
        none."""
        return tuple(self.values()[0].shape[-3:]) if self._data_fields \
            else None
