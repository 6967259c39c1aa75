"""Load a volume that is already in memory (e.g. read by
:func:`svd_mm.utils.medical_io.read_volume`) into a test pipeline."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from svd_mm.utils.volume_io import (DEEPLESION_HU_WINDOW, LITS_HU_WINDOW,
                                    Volume, preprocess_ct_image, resample_axis)

from .load_volume_nifti import LoadVolumeNifti
from .utils import _format_repr, _require_key

__all__ = ['LoadVolumeArray']


def check_stack_args(slice_spacing: float, hu_window: Sequence[float],
                     out_range: Sequence[float]) -> None:
    """Check the slice-stack arguments of ``LoadVolumeArray`` and
    ``LoadDeepLesionSlices``."""
    if not slice_spacing > 0:
        raise ValueError(
            f'slice_spacing must be positive, but got {slice_spacing}')
    if len(hu_window) != 2 or not hu_window[0] < hu_window[1]:
        raise ValueError('hu_window must be (low, high) with low < high, '
                         f'but got {hu_window}')
    if len(out_range) != 2:
        raise ValueError(f'out_range must be (low, high), but got {out_range}')


def stack_positions(num_slices: int, slice_spacing: float, key_slice: int,
                    slice_intv: float, first: float,
                    last: float) -> np.ndarray:
    """Fractional slice indices of ``num_slices`` slices ``slice_spacing``
    mm apart centred on ``key_slice``, clamped to ``[first, last]``."""
    offsets = np.arange(num_slices) - (num_slices - 1) / 2
    positions = key_slice + offsets * slice_spacing / slice_intv
    return np.clip(positions, first, last)


def window_stack(stack: np.ndarray, hu_window: Sequence[float],
                 out_range: Sequence[float]) -> np.ndarray:
    """Map ``hu_window`` of a float32 HU slice stack linearly to
    ``out_range`` with clipping, in place.

    Args:
        stack (np.ndarray): float32 HU.
        hu_window (Sequence[float]): (low, high) HU.
        out_range (Sequence[float]): (low, high) output values.

    Returns:
        np.ndarray: ``stack``.
    """
    low, high = hu_window
    out_low, out_high = out_range
    stack -= low
    stack *= (out_high - out_low) / (high - low)
    stack += out_low
    np.clip(stack, min(out_low, out_high), max(out_low, out_high), out=stack)
    return stack


@TRANSFORMS.register_module()
class LoadVolumeArray(BaseTransform):
    """Start a pipeline from an in-memory (D, H, W) volume.

    The volume inferencers of ``svd_mm.apis`` read a user's volume once
    (NIfTI, NRRD, MetaImage or DICOM) and put this transform in place of
    the file loader of the config's test pipeline, with the loader's
    settings, so that the rest of the pipeline runs unchanged. It has two
    outputs:

    - **the whole volume** (``num_slices=None``), in place of
      :class:`~svd_mm.datasets.transforms.LoadVolumeNifti`: ``img`` is
      (1, D, H, W); with ``preprocess`` the volume goes through
      :func:`~svd_mm.utils.volume_io.preprocess_ct_image` (HU window to
      uint8 [0, 255], ``spacing_z`` mm slices), the function the NIfTI
      loader and the LiTS preparation call, so the arrays are the same;
    - **a slice stack** around ``results['key_slice']`` (``num_slices``
      odd), in place of ``LoadDeepLesionSlices``: ``img`` is an
      (H, W, num_slices) float32 stack whose slice ``t`` lies at the
      fractional slice index
      ``key_slice + (t - (num_slices - 1) / 2) * slice_spacing / s``
      (``s`` the volume's slice spacing), clamped to the volume and
      interpolated linearly in HU, then ``hu_window`` is mapped linearly
      to ``out_range`` with clipping: the arithmetic of
      ``LoadDeepLesionSlices``, so both give the same stack for the same
      slices.

    Required Keys:

    - volume (Volume | np.ndarray): a :class:`~svd_mm.utils.medical_io.
      Volume`, or a (D, H, W) array (HU for CT).
    - affine (array-like, optional): (4, 4) RAS affine of an array volume
      (a ``Volume`` carries its own). Required for an array.
    - key_slice (int): index (along D) of the key slice; slice stack only.

    Added Keys:

    - img (np.ndarray): (1, D', H, W) volume (float32, or uint8 after a
      ``preprocess`` without ``to_float32``) or the (H, W, num_slices)
      float32 stack.
    - img_shape (tuple): (D', H, W) for a volume, (H, W) for a stack.
    - ori_shape (tuple): same as ``img_shape``.
    - affine (list): (4, 4) RAS affine of the grid of ``img`` (volume).
    - spacing (tuple): (D', H, W) voxel size in mm (volume).
    - original_geometry (dict): ``affine``, ``shape`` and ``spacing`` of the
      input volume, to which predictions are written back (volume).
    - slice_positions (np.ndarray): (num_slices, ) fractional slice indices
      of the stack (stack).
    - slice_intv (float), slice_range (tuple): the input's slice spacing
      and (0, D - 1) (stack).

    Args:
        preprocess (dict, optional): ``window`` ((low, high) HU, default
            (-200, 250)) and ``spacing_z`` (mm, default 1.0; None keeps the
            slices), as for ``LoadVolumeNifti``; its label keys
            (``foreground_labels``, ``allowed_labels``) are accepted and
            ignored. Volume only. Defaults to None (values as they are).
        to_float32 (bool): Convert a preprocessed (uint8) volume to float32.
            Defaults to False.
        num_slices (int, optional): Slices of the stack, odd. Defaults to
            None (whole volume).
        slice_spacing (float): Spacing of the stack's slices in mm.
            Defaults to 2.5.
        hu_window (Sequence[float]): (low, high) HU mapped to ``out_range``
            (stack). Defaults to (-1024, 1050).
        out_range (Sequence[float]): (low, high) output values (stack).
            Defaults to (0, 255).

    Examples:
        >>> import numpy as np
        >>> from svd_mm.datasets.transforms.load_volume_array import (
        ...     LoadVolumeArray)
        >>> ct = np.full((12, 32, 40), -1000., dtype=np.float32)
        >>> affine = np.diag([-0.8, -0.8, 5., 1.])
        >>> out = LoadVolumeArray(preprocess=dict(window=(-1000, 400),
        ...     spacing_z=2.5))(dict(volume=ct, affine=affine))
        >>> out['img'].shape, out['spacing']
        ((1, 23, 32, 40), (2.5, 0.8, 0.8))
        >>> out = LoadVolumeArray(num_slices=9)(
        ...     dict(volume=ct, affine=affine, key_slice=6))
        >>> out['img'].shape, out['slice_positions'].tolist()[:3]
        ((32, 40, 9), [4.0, 4.5, 5.0])
    """

    PREPROCESS_KEYS = LoadVolumeNifti.PREPROCESS_KEYS

    def __init__(self,
                 preprocess: Optional[dict] = None,
                 to_float32: bool = False,
                 num_slices: Optional[int] = None,
                 slice_spacing: float = 2.5,
                 hu_window: Sequence[float] = DEEPLESION_HU_WINDOW,
                 out_range: Sequence[float] = (0., 255.)) -> None:
        if preprocess is not None:
            preprocess = LoadVolumeNifti._check_preprocess(preprocess)
        if num_slices is not None:
            if not isinstance(num_slices, int) or num_slices < 1 or \
                    num_slices % 2 == 0:
                raise ValueError('num_slices must be a positive odd int or '
                                 f'None, but got {num_slices!r}')
            if preprocess is not None:
                raise ValueError('preprocess applies to the whole volume; a '
                                 'slice stack (num_slices) uses hu_window')
        check_stack_args(slice_spacing, hu_window, out_range)
        self.preprocess = preprocess
        self.to_float32 = to_float32
        self.num_slices = num_slices
        self.slice_spacing = float(slice_spacing)
        self.hu_window = tuple(float(v) for v in hu_window)
        self.out_range = tuple(float(v) for v in out_range)

    @staticmethod
    def _volume(results: dict) -> Volume:
        volume = _require_key(results, 'volume', 'LoadVolumeArray')
        if isinstance(volume, Volume):
            return volume
        if results.get('affine') is None:
            raise KeyError("LoadVolumeArray needs 'affine' (the (4, 4) RAS "
                           'affine) with an array volume')
        return Volume(volume, results['affine'],
                      results.get('img_path', '<memory>'))

    def _load_volume(self, results: dict, volume: Volume) -> dict:
        original = volume.geometry
        if self.preprocess is not None:
            volume = preprocess_ct_image(
                volume,
                window=self.preprocess.get('window', LITS_HU_WINDOW),
                spacing_z=self.preprocess.get('spacing_z', 1.))
            array = volume.array
            if self.to_float32:
                array = array.astype(np.float32)
        else:
            array = volume.array.astype(np.float32, copy=False)
        shape = tuple(array.shape)
        results['img'] = array[None]
        results['img_shape'] = shape
        results['ori_shape'] = shape
        results['affine'] = volume.affine.tolist()
        results['spacing'] = volume.spacing
        results['original_geometry'] = original
        return results

    def slice_positions(self, key_slice: int, slice_intv: float,
                        num_volume_slices: int) -> np.ndarray:
        """Fractional slice indices of the stack around ``key_slice``.

        Args:
            key_slice (int): Index of the key slice.
            slice_intv (float): Slice spacing of the volume in mm.
            num_volume_slices (int): D of the volume.

        Returns:
            np.ndarray: (num_slices, ) positions clamped to [0, D - 1].
        """
        return stack_positions(self.num_slices, self.slice_spacing, key_slice,
                               slice_intv, 0, num_volume_slices - 1)

    def _load_stack(self, results: dict, volume: Volume) -> dict:
        if 'key_slice' not in results:
            raise KeyError('LoadVolumeArray(num_slices=...) needs '
                           "'key_slice' (an index along D)")
        array, num = volume.array, volume.shape[0]
        key_slice = int(results['key_slice'])
        if not 0 <= key_slice < num:
            raise ValueError(f'key_slice {key_slice} is outside the {num} '
                             'slices of the volume')
        slice_intv = volume.spacing[0]
        positions = self.slice_positions(key_slice, slice_intv, num)
        # (H, W, D) view: the stack comes out with the slices last
        stack = window_stack(
            resample_axis(array.transpose(1, 2, 0), positions, axis=2),
            self.hu_window, self.out_range)
        results['img'] = stack
        results['img_shape'] = stack.shape[:2]
        results['ori_shape'] = stack.shape[:2]
        results['slice_positions'] = positions
        results['slice_intv'] = slice_intv
        results['slice_range'] = (0, num - 1)
        return results

    def transform(self, results: dict) -> dict:
        """Load the volume or the slice stack.

        Args:
            results (dict): Result dict with ``volume``.

        Returns:
            dict: The result dict with ``img`` and the keys listed above.
        """
        volume = self._volume(results)
        if self.num_slices is None:
            return self._load_volume(results, volume)
        return self._load_stack(results, volume)

    def __repr__(self) -> str:
        return _format_repr(self, 'preprocess', 'to_float32', 'num_slices',
                            'slice_spacing', 'hu_window', 'out_range')
