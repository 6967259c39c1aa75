"""Connected-component post-processing of binary segmentation masks."""
from typing import Optional, Union

import numpy as np
import torch
from scipy import ndimage

__all__ = ['largest_connected_component']

Mask = Union[np.ndarray, torch.Tensor]


def largest_connected_component(mask: Mask,
                                connectivity: Optional[int] = None) -> Mask:
    """Keep the largest connected component of a binary mask.

    The usual post-processing of liver segmentation (LiTS): the liver is one
    organ, so smaller blobs are false positives. Components are found with
    ``scipy.ndimage.label``; with several components of the largest size the
    first one in C order is kept. An empty mask stays empty.

    Args:
        mask (np.ndarray | torch.Tensor): Binary mask of any number of
            dimensions, e.g. (D, H, W); nonzero is foreground.
        connectivity (int, optional): Neighbours that connect two voxels,
            as in ``scipy.ndimage.generate_binary_structure``: 1 (faces,
            6 in 3D), 2 (and edges, 18 in 3D) up to ``mask.ndim`` (and
            corners, 26 in 3D). Defaults to None (``mask.ndim``).

    Returns:
        np.ndarray | torch.Tensor: The mask with only its largest component,
        of the type, dtype (and device) of ``mask``.

    Examples:
        >>> import numpy as np
        >>> mask = np.zeros((1, 3, 7), dtype=np.uint8)
        >>> mask[0, :, :2] = 1  # 6 voxels
        >>> mask[0, 1, 4:] = 2  # 3 voxels
        >>> largest_connected_component(mask)[0]
        array([[1, 1, 0, 0, 0, 0, 0],
               [1, 1, 0, 0, 0, 0, 0],
               [1, 1, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    is_tensor = isinstance(mask, torch.Tensor)
    if not is_tensor and not isinstance(mask, np.ndarray):
        raise TypeError('mask must be an np.ndarray or a torch.Tensor, but '
                        f'got {type(mask).__name__}')
    array = mask.detach().cpu().numpy() if is_tensor else mask
    if array.ndim == 0:
        raise ValueError('mask must have at least one dimension, got a '
                         'scalar')
    if connectivity is None:
        connectivity = array.ndim
    if not 1 <= connectivity <= array.ndim:
        raise ValueError(f'connectivity must be in [1, {array.ndim}] for a '
                         f'mask of shape {array.shape}, got {connectivity}')
    foreground = array != 0
    structure = ndimage.generate_binary_structure(array.ndim, connectivity)
    labels, num = ndimage.label(foreground, structure=structure)
    if num > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0  # background
        keep = labels == int(np.argmax(sizes))
    else:
        keep = foreground
    out = np.where(keep, array, np.zeros((), dtype=array.dtype))
    if is_tensor:
        return torch.from_numpy(out).to(mask.device)
    return out
