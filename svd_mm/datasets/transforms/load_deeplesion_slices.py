"""Load a DeepLesion key slice with its neighbours, resampled along z.

Importing this module needs mmdet (the transform registers in mmdet's
``TRANSFORMS``, next to the ``LoadAnnotations`` / ``Resize`` it works with).
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get

from svd_mm.utils.volume_io import (DEEPLESION_HU_WINDOW, blend,
                                    interpolation_weights)

from .load_volume_array import check_stack_args, stack_positions, window_stack
from .utils import _format_repr

__all__ = ['LoadDeepLesionSlices']


@TRANSFORMS.register_module()
class LoadDeepLesionSlices(BaseTransform):
    """Load ``num_slices`` CT slices centred on a DeepLesion key slice.

    DeepLesion stores each series as 16-bit PNG slices,
    ``Images_png/<patient>_<study>_<series>/<index:03d>.png``, whose value
    minus ``hu_offset`` (32768) is the Hounsfield unit (HU). Series have
    slice intervals of 0.6 to 5 mm; this transform resamples them to a
    common ``slice_spacing``. Slice ``k`` (0-based) of the output lies at
    the (fractional) index

    ``key + (k - (num_slices - 1) / 2) * slice_spacing / slice_intv``

    of the series: between two existing slices it is interpolated linearly
    (in HU), and beyond the series' ends (``slice_range``) the nearest end
    slice is repeated. The HU are then windowed: ``hu_window`` is mapped
    linearly to ``out_range`` and values outside are clipped.

    The output ``img`` is an (H, W, D) float32 stack, the slices on the last
    axis, so that mmdet's ``Resize``, ``RandomFlip`` (``'horizontal'``,
    ``'vertical'``) and ``LoadAnnotations`` work on it as on a multi-channel
    image. Put :class:`~svd_mm.datasets.transforms.SlicesToVolume` after
    them to get the (1, D, H, W) volume of a 3D backbone (and, optionally,
    flip along z); without it, ``PackDetInputs`` packs a (D, H, W)
    multi-slice input for a 2D detector (the "9-slice" input of 3DCE-like
    models)::

        train_pipeline = [
            dict(type='LoadDeepLesionSlices', num_slices=9),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(512, 512), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='RandomFlip', prob=0.5, direction='vertical'),
            dict(type='SlicesToVolume', flip_prob=0.5),
            dict(type='PackDetVolumeInputs'),
        ]

    Required Keys:

    - img_path (str): Path of the key slice PNG; the other slices are the
      files of the same folder named by index with the same zero padding.
    - slice_intv (float): Slice interval of the series in mm.
    - slice_range (Sequence[int]): First and last slice index of the series
      (inclusive), the ``Slice_range`` of ``DL_info.csv``.
    - key_slice (int, optional): Index of the key slice. Defaults to the
      file name of ``img_path`` read as an integer.
    - instances (list[dict], optional): Boxes ``bbox`` (x1, y1, x2, y2)
      checked against the image when ``check_boxes`` is True.

    Added Keys:

    - img (np.ndarray): (H, W, D) float32, D = ``num_slices``.
    - img_shape (tuple): (H, W).
    - ori_shape (tuple): (H, W).
    - slice_positions (np.ndarray): (D, ) float64, the fractional slice
      index of each output slice after clamping to ``slice_range``.

    Args:
        num_slices (int): Number of output slices, odd so that the key slice
            is in the middle. Defaults to 9.
        slice_spacing (float): Spacing of the output slices in mm.
            Defaults to 2.5.
        hu_window (Sequence[float]): (low, high) HU mapped to ``out_range``.
            Defaults to (-1024, 1050).
        out_range (Sequence[float]): (low, high) output values.
            Defaults to (0, 255).
        hu_offset (int): Value subtracted from the PNG values to get HU.
            Defaults to 32768.
        check_boxes (bool): Raise an error when a box of ``instances`` is
            not inside the image. Defaults to True.
        backend_args (dict, optional): File backend arguments of
            ``mmengine.fileio.get``. Defaults to None.
    """

    def __init__(self,
                 num_slices: int = 9,
                 slice_spacing: float = 2.5,
                 hu_window: Sequence[float] = DEEPLESION_HU_WINDOW,
                 out_range: Sequence[float] = (0., 255.),
                 hu_offset: int = 32768,
                 check_boxes: bool = True,
                 backend_args: Optional[dict] = None) -> None:
        if not isinstance(num_slices, int) or num_slices < 1 \
                or num_slices % 2 == 0:
            raise ValueError('num_slices must be a positive odd integer, '
                             f'but got {num_slices!r}')
        check_stack_args(slice_spacing, hu_window, out_range)
        self.num_slices = num_slices
        self.slice_spacing = float(slice_spacing)
        self.hu_window = tuple(float(v) for v in hu_window)
        self.out_range = tuple(float(v) for v in out_range)
        self.hu_offset = hu_offset
        self.check_boxes = check_boxes
        self.backend_args = backend_args

    def slice_positions(self, key_slice: int, slice_intv: float,
                        slice_range: Sequence[int]) -> np.ndarray:
        """Fractional slice indices of the output slices.

        Args:
            key_slice (int): Index of the key slice.
            slice_intv (float): Slice interval of the series in mm.
            slice_range (Sequence[int]): First and last index (inclusive).

        Returns:
            np.ndarray: (num_slices, ) positions clamped to ``slice_range``.

        Examples:
            >>> loader = LoadDeepLesionSlices(num_slices=5)
            >>> loader.slice_positions(10, 5., (1, 11)).tolist()
            [9.0, 9.5, 10.0, 10.5, 11.0]
        """
        return stack_positions(self.num_slices, self.slice_spacing, key_slice,
                               slice_intv, slice_range[0], slice_range[1])

    def _slice_path(self, key_path: str, index: int) -> str:
        stem, ext = osp.splitext(osp.basename(key_path))
        return osp.join(osp.dirname(key_path), f'{index:0{len(stem)}d}{ext}')

    def _read_hu(self, path: str, key_path: str) -> np.ndarray:
        """Read one 16-bit PNG slice as float32 HU."""
        try:
            img_bytes = get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'Slice file {path} is missing: it is needed around the key '
                f'slice {key_path} (its slice_range says it exists)') from e
        img = mmcv.imfrombytes(img_bytes, flag='unchanged', backend='cv2')
        if img is None:
            raise ValueError(f'Slice file {path} could not be decoded as an '
                             'image')
        if img.dtype != np.uint16:
            raise ValueError(
                f'Slice file {path} is a {img.dtype} image, but DeepLesion '
                'slices are 16-bit PNGs (uint16, HU + '
                f'{self.hu_offset}); an 8-bit export has lost the HU')
        if img.ndim != 2:
            raise ValueError(f'Slice file {path} must be a one-channel '
                             f'image, but has shape {img.shape}')
        return img.astype(np.float32) - np.float32(self.hu_offset)

    def transform(self, results: dict) -> dict:
        """Load, resample and window the slices around the key slice.

        Args:
            results (dict): Result dict with the required keys.

        Returns:
            dict: The result dict with ``img`` (H, W, D) and shapes.
        """
        key_path = results['img_path']
        slice_intv, slice_range, key_slice = self._slice_info(results)
        positions = self.slice_positions(key_slice, slice_intv, slice_range)
        lower, upper, weight = interpolation_weights(positions)

        cache: Dict[int, np.ndarray] = {}
        for index in sorted(set(lower.tolist()) | set(upper.tolist())):
            path = key_path if index == key_slice else self._slice_path(
                key_path, index)
            cache[index] = self._read_hu(path, key_path)
            first = next(iter(cache))
            if cache[index].shape != cache[first].shape:
                raise ValueError(
                    f'Slice file {path} has shape {cache[index].shape}, but '
                    f'slice {first} of the same series has '
                    f'{cache[first].shape}')
        stack = window_stack(
            blend(
                np.stack([cache[i] for i in lower], axis=-1),
                np.stack([cache[i] for i in upper], axis=-1), weight, -1),
            self.hu_window, self.out_range)

        height, width = stack.shape[:2]
        if self.check_boxes:
            self._check_boxes(results, key_path, height, width)
        results['img'] = stack
        results['img_shape'] = (height, width)
        results['ori_shape'] = (height, width)
        results['slice_positions'] = positions
        return results

    def _slice_info(self, results: dict) -> Tuple[float, Tuple[int, int],
                                                  int]:
        key_path = results['img_path']
        missing = [k for k in ('slice_intv', 'slice_range') if k not in results
                   or results[k] is None]
        if missing:
            raise KeyError(
                f'{self.__class__.__name__} needs {missing} for {key_path} '
                '(image fields of the annotation json, see '
                'tools/dataset_converters/prepare_deeplesion.py)')
        slice_intv = float(results['slice_intv'])
        if not slice_intv > 0:
            raise ValueError(f'slice_intv of {key_path} must be positive, '
                             f'but got {slice_intv}')
        slice_range = tuple(int(v) for v in results['slice_range'])
        if len(slice_range) != 2 or slice_range[0] > slice_range[1]:
            raise ValueError(f'slice_range of {key_path} must be (first, '
                             f'last), but got {results["slice_range"]}')
        key_slice = results.get('key_slice')
        if key_slice is None:
            stem = osp.splitext(osp.basename(key_path))[0]
            if not stem.isdigit():
                raise ValueError(
                    f'Cannot read the key slice index from {key_path}: name '
                    "the file by its index (e.g. '109.png') or give "
                    "'key_slice'")
            key_slice = int(stem)
        key_slice = int(key_slice)
        if not slice_range[0] <= key_slice <= slice_range[1]:
            raise ValueError(f'Key slice {key_slice} of {key_path} is outside '
                             f'its slice_range {slice_range}')
        return slice_intv, slice_range, key_slice

    @staticmethod
    def _check_boxes(results: dict, key_path: str, height: int,
                     width: int) -> None:
        for instance in results.get('instances', []):
            x1, y1, x2, y2 = (float(v) for v in instance['bbox'])
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                raise ValueError(
                    f'Box {[x1, y1, x2, y2]} of {key_path} is not inside the '
                    f'{width}x{height} (width x height) image')

    def __repr__(self) -> str:
        return _format_repr(self, 'num_slices', 'slice_spacing', 'hu_window',
                            'out_range', 'hu_offset', 'check_boxes',
                            'backend_args')
