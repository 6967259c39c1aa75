"""Load a LIDC-IDRI nodule volume (and its mask) from an npz file."""
import io
from typing import List, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.registry import TRANSFORMS

from .load_volume_nifti import add_gt_seg_map
from .utils import _format_repr, _require_key

__all__ = ['LoadNoduleNpz']


@TRANSFORMS.register_module()
class LoadNoduleNpz(BaseTransform):
    """Load a nodule volume from an npz file of the LIDC-IDRI release.

    The release used by ACS and SVD-Net holds one ``<name>.npz`` per nodule
    with a uint8 volume ``voxel`` (D, H, W) centred on the nodule (CT at
    1 mm, windowed to [-1024, 400] HU) and the nodule mask of each rater,
    ``answer1`` to ``answer4``. The volume gets a channel axis; like mmcv's
    ``LoadImageFromFile`` it stays uint8 unless ``to_float32`` (normalise it
    later with :class:`~svd_mm.datasets.transforms.ScaleIntensity` or the
    data preprocessor).

    Required Keys:

    - img_path (str): The npz file.
    - seg_map_path (str, optional): The npz file with the mask, when
      ``with_seg``; defaults to ``img_path``.
    - mask_key (str, optional): The mask's key in the npz (set by
      :class:`~svd_mm.datasets.LIDCNoduleDataset`); overridden by the
      ``mask_key`` argument.

    Added Keys:

    - img (np.ndarray): (1, D, H, W), uint8 (or float32).
    - img_shape (tuple): (D, H, W).
    - ori_shape (tuple): (D, H, W).
    - gt_seg_map (np.ndarray): (D, H, W) uint8, 1 inside the nodule, when
      ``with_seg``.
    - seg_fields (list[str]): ``'gt_seg_map'`` appended when ``with_seg``.

    Args:
        with_seg (bool): Whether to load the mask too. Defaults to False.
        voxel_key (str): Key of the volume in the npz. Defaults to
            ``'voxel'``.
        mask_key (str, optional): Key of the mask in the npz. Defaults to
            None, i.e. ``results['mask_key']`` if present, else
            ``'answer1'``.
        to_float32 (bool): Whether to convert the volume to float32.
            Defaults to False.
        backend_args (dict, optional): Arguments of the mmengine file
            backend. Defaults to None (local files).

    Examples:
        >>> import os.path as osp, tempfile
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms import LoadNoduleNpz
        >>> path = osp.join(tempfile.mkdtemp(), 'lidc1_1.npz')
        >>> voxel = np.zeros((20, 24, 28), dtype=np.uint8)
        >>> np.savez(path, voxel=voxel, answer1=voxel > 0)
        >>> results = LoadNoduleNpz(with_seg=True)(dict(img_path=path))
        >>> results['img'].shape, results['gt_seg_map'].dtype
        ((1, 20, 24, 28), dtype('uint8'))
    """

    def __init__(self,
                 with_seg: bool = False,
                 voxel_key: str = 'voxel',
                 mask_key: Optional[str] = None,
                 to_float32: bool = False,
                 backend_args: Optional[dict] = None):
        for name, key in (('voxel_key', voxel_key), ('mask_key', mask_key)):
            if key is not None and (not isinstance(key, str) or not key):
                raise TypeError(f'{name} must be a non-empty str, but got '
                                f'{key!r}')
        self.with_seg = with_seg
        self.voxel_key = voxel_key
        self.mask_key = mask_key
        self.to_float32 = to_float32
        self.backend_args = backend_args.copy() if backend_args else None

    def _read(self, path: str, *keys: str) -> List[np.ndarray]:
        """Read 3-D arrays from one npz file (fetched once), with errors
        naming the file and the key."""
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'{self.__class__.__name__}: no nodule file {path}') from e
        arrays = []
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in keys:
                if key not in npz.files:
                    raise KeyError(
                        f'{self.__class__.__name__}: {path} has no key '
                        f'{key!r}; its keys are {sorted(npz.files)}')
                arr = npz[key]
                if arr.ndim != 3:
                    raise ValueError(
                        f'{self.__class__.__name__}: {key!r} in {path} must '
                        f'be a (D, H, W) volume, but has shape {arr.shape}')
                arrays.append(arr)
        return arrays

    def transform(self, results: dict) -> dict:
        """Load the volume (and mask).

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict: The result dict with ``img`` and, if ``with_seg``,
            ``gt_seg_map``.
        """
        path = _require_key(results, 'img_path', type(self).__name__)
        if not self.with_seg:
            voxel, = self._read(path, self.voxel_key)
        else:
            mask_key = self.mask_key or results.get('mask_key', 'answer1')
            seg_path = results.get('seg_map_path') or path
            if seg_path == path:  # the release keeps both in one file
                voxel, mask = self._read(path, self.voxel_key, mask_key)
            else:
                voxel, = self._read(path, self.voxel_key)
                mask, = self._read(seg_path, mask_key)
        if self.to_float32:
            voxel = voxel.astype(np.float32)
        results['img'] = np.ascontiguousarray(voxel[None])
        results['img_shape'] = voxel.shape
        results['ori_shape'] = voxel.shape
        if self.with_seg:
            if mask.shape != voxel.shape:
                raise ValueError(
                    f'{self.__class__.__name__}: mask {mask_key!r} of shape '
                    f'{mask.shape} in {seg_path} does not match '
                    f'{self.voxel_key!r} of shape {voxel.shape} in {path}')
            add_gt_seg_map(results, (mask > 0).astype(np.uint8))
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'with_seg', 'voxel_key', 'mask_key',
                            'to_float32', 'backend_args')
