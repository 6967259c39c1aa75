"""Load a NIfTI volume (and its label volume), optionally preprocessing raw
CT on the fly."""
from functools import partial
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from svd_mm.utils.volume_io import (LITS_HU_WINDOW, Volume,
                                    check_finite_voxels, preprocess_ct_image,
                                    preprocess_label, read_nifti,
                                    same_geometry)

from .lazy_volume import open_nifti_lazy
from .utils import _format_repr, _require_key

__all__ = ['LoadVolumeNifti', 'labels_to_uint8', 'add_gt_seg_map']


def add_gt_seg_map(results: dict, label) -> None:
    """Put ``label`` into ``results['gt_seg_map']`` and list that key in
    ``results['seg_fields']`` (the fields the volume transforms crop, flip
    and pad with the image)."""
    results['gt_seg_map'] = label
    seg_fields = results.setdefault('seg_fields', [])
    if 'gt_seg_map' not in seg_fields:
        seg_fields.append('gt_seg_map')


def labels_to_uint8(label: np.ndarray, path: str) -> np.ndarray:
    """Check that labels are integers in [0, 255] and return them as uint8.

    uint8 labels are returned as they are (no check, no copy).

    Args:
        label (np.ndarray): Labels of any numeric dtype.
        path (str): Their file, named in errors.

    Returns:
        np.ndarray: uint8 labels.
    """
    if label.dtype == np.uint8:
        return label
    if np.issubdtype(label.dtype, np.floating):
        if not np.array_equal(label, np.round(label)):
            raise ValueError(f'{path} holds non-integer labels')
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f'{path} holds labels outside [0, 255] '
                         f'([{label.min()}, {label.max()}])')
    return label.astype(np.uint8)


@TRANSFORMS.register_module()
class LoadVolumeNifti(BaseTransform):
    """Load a NIfTI volume as (1, D, H, W) and, optionally, its labels.

    The NIfTI data (i, j, k) become a (D, H, W) = (k, j, i) array (see
    :mod:`svd_mm.utils.volume_io`) with a channel axis in front. Two kinds
    of files are read through one code path:

    - **prepared** volumes (``tools/dataset_converters/prepare_lits.py``):
      loaded as they are (uint8 [0, 255] images, 0 / 1 labels);
    - **raw** CT volumes, when ``preprocess`` is set (here or by the dataset
      in ``results['preprocess']``): the same functions as the preparation
      script, :func:`~svd_mm.utils.volume_io.preprocess_ct_image` (HU
      window to uint8, ``spacing_z`` mm slices) and
      :func:`~svd_mm.utils.volume_io.preprocess_label` (foreground labels
      to 1, nearest slice), are applied after loading.

    With ``lazy=True``, an uncompressed prepared volume (a ``.nii`` file
    loaded without ``preprocess``) is not read here: ``img`` and
    ``gt_seg_map`` are :class:`~svd_mm.datasets.transforms.lazy_volume.\
LazyNiftiVolume` views of the files, of the same shape and dtype, from
    which :class:`~svd_mm.datasets.transforms.RandomCrop3D` and
    :class:`~svd_mm.datasets.transforms.CenterCrop3D` read only their box
    (the same values as from the eager arrays). The other volume transforms
    read the whole volume first; other code gets it with ``np.asarray``.
    Label values are then checked on the boxes read (uint8 labels need no
    check), NaN voxels of a float image likewise. ``.nii.gz`` files and
    ``preprocess`` always load the whole volume.

    The geometry is recorded: ``affine`` and ``spacing`` of the grid of
    ``img`` and ``original_geometry``, the grid of the raw volume to which
    predictions are written back
    (:func:`~svd_mm.utils.volume_io.save_prediction_nifti`). For a prepared
    volume it comes from ``results['original_geometry']`` (set by
    :class:`~svd_mm.datasets.LiTSDataset` from the preparation's meta json)
    and defaults to the file's own geometry.

    Required Keys:

    - img_path (str): The volume file (``.nii`` / ``.nii.gz``).
    - seg_map_path (str, optional): The label file, when ``with_seg``.
    - preprocess (dict, optional): Preprocessing of a raw volume, see
      ``preprocess``; overridden by the argument.
    - original_geometry (dict, optional): Grid of the raw volume of a
      prepared one.

    Added Keys:

    - img (np.ndarray | LazyNiftiVolume): (1, D, H, W), the file's dtype
      (uint8 for prepared or preprocessed volumes) or float32 with
      ``to_float32``; a view of the file with ``lazy``.
    - img_shape (tuple): (D, H, W).
    - ori_shape (tuple): (D, H, W), that of ``img`` (the predictions are
      made and evaluated on this grid).
    - affine (list): (4, 4) NIfTI affine of the grid of ``img``.
    - spacing (tuple): (D, H, W) voxel size in mm.
    - original_geometry (dict): ``affine``, ``shape`` and ``spacing`` of
      the raw volume.
    - gt_seg_map (np.ndarray | LazyNiftiVolume): (D, H, W) uint8 labels,
      when ``with_seg``; a view of the file with ``lazy``.
    - seg_fields (list[str]): ``'gt_seg_map'`` appended when ``with_seg``.

    Args:
        with_seg (bool): Whether to load the labels too. Defaults to False.
        to_float32 (bool): Whether to convert the volume to float32.
            Defaults to False.
        preprocess (dict, optional): Preprocess a raw volume with the keys
            ``window`` ((low, high) HU, default (-200, 250)), ``spacing_z``
            (mm, default 1.0; None keeps the slices), ``foreground_labels``
            (labels that become 1, default (1, 2)) and ``allowed_labels``
            (default (0, 1, 2); None allows any). Defaults to None:
            ``results['preprocess']`` if present, else the files are loaded
            as they are.
        affine_tol (float): Largest difference allowed between the affines
            of the volume and its labels. Defaults to 1e-3.
        lazy (bool): Whether to put views of uncompressed ``.nii`` files
            loaded without ``preprocess`` into the results instead of
            arrays, for pipelines that crop first (LiTS training); a box is
            read through nibabel's ``ArrayProxy`` slicing.
            Defaults to False.

    Examples:
        >>> from svd_mm.datasets.transforms import LoadVolumeNifti
        >>> load = LoadVolumeNifti(with_seg=True, preprocess=dict(
        ...     window=(-200, 250), spacing_z=1.0))
        >>> results = load(dict(img_path='data/lits/volume-0.nii',
        ...     seg_map_path='data/lits/segmentation-0.nii')
        ...     )  # doctest: +SKIP
        >>> results['img'].shape, results['spacing']  # doctest: +SKIP
        ((1, 375, 512, 512), (1.0, 0.703125, 0.703125))
    """

    PREPROCESS_KEYS = ('window', 'spacing_z', 'foreground_labels',
                       'allowed_labels')

    def __init__(self,
                 with_seg: bool = False,
                 to_float32: bool = False,
                 preprocess: Optional[dict] = None,
                 affine_tol: float = 1e-3,
                 lazy: bool = False):
        if preprocess is not None:
            preprocess = self._check_preprocess(preprocess)
        self.with_seg = with_seg
        self.to_float32 = to_float32
        self.preprocess = preprocess
        self.affine_tol = affine_tol
        if not isinstance(lazy, bool):
            raise TypeError(f'lazy must be a bool, got {lazy!r}')
        self.lazy = lazy

    @classmethod
    def _check_preprocess(cls, preprocess: dict) -> dict:
        if not isinstance(preprocess, dict):
            raise TypeError(f'preprocess must be a dict with keys '
                            f'{cls.PREPROCESS_KEYS} or None, but got '
                            f'{preprocess!r}')
        unknown = set(preprocess) - set(cls.PREPROCESS_KEYS)
        if unknown:
            raise KeyError(f'Unknown preprocess keys {sorted(unknown)}; '
                           f'allowed: {cls.PREPROCESS_KEYS}')
        return dict(preprocess)

    def _get_preprocess(self, results: dict) -> Optional[dict]:
        if self.preprocess is not None:
            return self.preprocess
        preprocess = results.get('preprocess')
        return None if preprocess is None else self._check_preprocess(
            preprocess)

    def _reads_lazily(self, path: str, preprocess: Optional[dict]) -> bool:
        return (self.lazy and preprocess is None
                and str(path).lower().endswith('.nii'))

    def _load_image(self, path: str, preprocess: Optional[dict]):
        """The (1, D, H, W) image (array or view), its geometry and that of
        the file (the raw grid when preprocessed)."""
        if self._reads_lazily(path, preprocess):
            image, geometry = open_nifti_lazy(
                path,
                channel=True,
                dtype=np.float32 if self.to_float32 else None,
                convert=partial(check_finite_voxels, part=' read'))
            return image, geometry, geometry
        volume = read_nifti(path)
        file_geometry = volume.geometry
        if preprocess is not None:
            volume = preprocess_ct_image(
                volume,
                window=preprocess.get('window', LITS_HU_WINDOW),
                spacing_z=preprocess.get('spacing_z', 1.))
        image = volume.array
        if self.to_float32:
            image = image.astype(np.float32)
        return image[None], volume.geometry, file_geometry

    def _load_label(self, results: dict, geometry: dict,
                    preprocess: Optional[dict], img_path: str):
        seg_path = results.get('seg_map_path')
        if not seg_path:
            raise KeyError(f'{self.__class__.__name__}(with_seg=True) needs '
                           f"'seg_map_path' for {img_path}")
        if self._reads_lazily(seg_path, preprocess):
            label, label_geometry = open_nifti_lazy(
                seg_path, dtype=np.uint8, convert=labels_to_uint8)
        else:
            label = read_nifti(seg_path)
            label_geometry = label.geometry
        if label_geometry['shape'] != geometry['shape']:
            raise ValueError(
                f'{self.__class__.__name__}: label {seg_path} of (D, H, W) '
                f"{tuple(label_geometry['shape'])} does not match the volume "
                f"{img_path} of {tuple(geometry['shape'])}")
        if not same_geometry(label_geometry, geometry, self.affine_tol):
            raise ValueError(
                f'{self.__class__.__name__}: the affines of {seg_path} and '
                f'{img_path} differ by more than {self.affine_tol}')
        if preprocess is not None:
            return preprocess_label(
                label,
                foreground_labels=preprocess.get('foreground_labels', (1, 2)),
                spacing_z=preprocess.get('spacing_z', 1.),
                allowed_labels=preprocess.get('allowed_labels', (0, 1, 2)),
            ).array
        if isinstance(label, Volume):
            return labels_to_uint8(label.array, seg_path)
        return label

    def transform(self, results: dict) -> dict:
        """Load the volume (and labels).

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict: The result dict with ``img`` and, if ``with_seg``,
            ``gt_seg_map``, plus the geometry keys.
        """
        img_path = _require_key(results, 'img_path', type(self).__name__)
        preprocess = self._get_preprocess(results)
        # file_geometry: the grid of the file, which the label must share
        image, geometry, file_geometry = self._load_image(img_path,
                                                          preprocess)
        if preprocess is not None:
            original = file_geometry
        else:
            original = results.get('original_geometry') or geometry
        label = None
        if self.with_seg:
            label = self._load_label(results, file_geometry, preprocess,
                                     img_path)
        shape = tuple(image.shape[1:])
        results['img'] = image
        results['img_shape'] = shape
        results['ori_shape'] = shape
        results['affine'] = geometry['affine']
        results['spacing'] = tuple(geometry['spacing'])
        results['original_geometry'] = original
        if label is not None:
            add_gt_seg_map(results, label)
        return results

    def __repr__(self) -> str:
        return _format_repr(self, 'with_seg', 'to_float32', 'preprocess',
                            'affine_tol', 'lazy')
