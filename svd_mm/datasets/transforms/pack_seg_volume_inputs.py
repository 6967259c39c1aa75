"""mmseg packing for 3D volumes. Importing this module needs mmseg."""
import numpy as np
from mmcv.transforms import to_tensor
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from svd_mm.structures import VoxelData

from .lazy_volume import materialize_lazy_volumes

__all__ = ['PackSegVolumeInputs']


@TRANSFORMS.register_module()
class PackSegVolumeInputs(PackSegInputs):
    """Pack a volume and its label volume for a 3D segmentor.

    mmseg's ``PackSegInputs`` moves the last axis of an (H, W, C) image to
    the front and stores the label as a 2D ``PixelData``. This subclass
    packs an (C, D, H, W) volume as it is and the (D, H, W) label volume as
    a :class:`~svd_mm.structures.VoxelData` of shape (1, D, H, W).

    A 2D label map (H, W) with the (H, W) of the volume, the target of a
    2D segmentor on a pseudo-3D volume (an image turned into (1, 3, H, W) by
    :class:`~svd_mm.datasets.transforms.RGBToVolume`), is packed as mmseg's
    ``PackSegInputs`` packs it: a ``PixelData`` of shape (1, H, W).

    Required Keys:

    - img (np.ndarray): (C, D, H, W) volume, or a (D, H, W) volume that is
      given C=1.
    - gt_seg_map (np.ndarray, optional): (D, H, W) label volume with the
      (D, H, W) of ``img``, or an (H, W) label map (of any size: mmseg's
      test pipelines load it at the original image size).

    Added Keys:

    - inputs (torch.Tensor): (C, D, H, W) volume, dtype of ``img``.
    - data_samples (SegDataSample): ``gt_sem_seg`` (VoxelData with a
      (1, D, H, W) int64 ``data``, or PixelData with a (1, H, W) one for a
      label map) and the meta keys present in the results.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo of the data
            sample when they are in the results. ``ori_shape``,
            ``img_shape`` and ``pad_shape`` are (D, H, W). Defaults to
            ``('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
            'pad_shape', 'scale_factor', 'flip', 'flip_direction',
            'spacing', 'affine', 'case_id', 'reduce_zero_label')``.
    """

    def __init__(self,
                 meta_keys=('img_path', 'seg_map_path', 'ori_shape',
                            'img_shape', 'pad_shape', 'scale_factor', 'flip',
                            'flip_direction', 'spacing', 'affine', 'case_id',
                            'reduce_zero_label')):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the volume, the label volume and the meta keys.

        Args:
            results (dict): Result dict from the data pipeline.

        Returns:
            dict: ``inputs`` (torch.Tensor of shape (C, D, H, W)) and
            ``data_samples`` (SegDataSample).
        """
        source = results.get('img_path', results.get('case_id', '<unknown>'))
        # views of LoadVolumeNifti(lazy=True) not cropped: the whole volumes
        materialize_lazy_volumes(results, ('img', 'gt_seg_map'))
        packed_results = dict()
        spatial_shape = None
        if 'img' in results:
            img = results['img']
            if img.ndim == 3:
                img = img[None]
            if img.ndim != 4:
                raise ValueError(
                    f'{self.__class__.__name__} packs a (C, D, H, W) or '
                    f'(D, H, W) volume, but got img of shape '
                    f'{tuple(img.shape)} from {source}')
            spatial_shape = tuple(img.shape[1:])
            packed_results['inputs'] = to_tensor(np.ascontiguousarray(img))

        data_sample = SegDataSample()
        if 'gt_seg_map' in results:
            data_sample.gt_sem_seg = self._pack_label(results, spatial_shape,
                                                      source)

        img_meta = {
            key: results[key]
            for key in self.meta_keys if key in results
        }
        data_sample.set_metainfo(img_meta)
        packed_results['data_samples'] = data_sample
        return packed_results

    def _pack_label(self, results: dict, spatial_shape, source: str):
        """Pack ``gt_seg_map`` as VoxelData (D, H, W) or PixelData (H, W)."""
        gt_seg_map = results['gt_seg_map']
        label_source = results.get('seg_map_path', source)
        if gt_seg_map.ndim not in (2, 3):
            raise ValueError(
                f'{self.__class__.__name__} expects gt_seg_map of shape '
                f'(D, H, W) or (H, W), but got {tuple(gt_seg_map.shape)} '
                f'from {label_source}')
        data = to_tensor(
            np.ascontiguousarray(gt_seg_map[None].astype(np.int64)))
        if gt_seg_map.ndim == 2:
            # as mmseg: test pipelines load the map after Resize, at the
            # original (H, W), which the prediction is scored at
            return PixelData(data=data)
        if spatial_shape is not None and \
                tuple(gt_seg_map.shape) != spatial_shape:
            raise ValueError(
                f'gt_seg_map of shape {tuple(gt_seg_map.shape)} does not '
                f'match the (D, H, W) = {spatial_shape} of img from {source} '
                f'(labels: {label_source})')
        return VoxelData(data=data)
