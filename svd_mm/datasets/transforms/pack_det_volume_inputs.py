"""mmdet packing for pseudo-3D volumes. Importing this module needs mmdet."""
import numpy as np
from mmcv.transforms import to_tensor
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

__all__ = ['PackDetVolumeInputs']


@TRANSFORMS.register_module()
class PackDetVolumeInputs(PackDetInputs):
    """Pack a volume and its detection annotations, like ``PackDetInputs``.

    mmdet's ``PackDetInputs`` turns an (H, W, C) image into a (C, H, W)
    tensor, which fails on the (C, D, H, W) volume made by
    :class:`~svd_mm.datasets.transforms.RGBToVolume`. This subclass packs a
    4-D ``img`` as a tensor without moving any axis; 2-D and 3-D images, the
    boxes, labels, masks, ignore flags and meta keys (``img_shape``,
    ``ori_shape``, ``scale_factor``, ...) are packed by the parent.

    Required Keys:

    - img (np.ndarray): (C, D, H, W) volume, or an (H, W) / (H, W, C) image.
    - gt_bboxes, gt_bboxes_labels, gt_masks, gt_ignore_flags, proposals,
      gt_seg_map (optional): as in ``PackDetInputs``.

    Added Keys:

    - inputs (torch.Tensor): (C, D, H, W) for a volume, (C, H, W) for an
      image.
    - data_samples (DetDataSample): annotations and ``meta_keys``.

    Args:
        meta_keys (Sequence[str]): Meta keys copied into the data sample.
            Defaults to ``('img_id', 'img_path', 'ori_shape', 'img_shape',
            'scale_factor', 'flip', 'flip_direction')``.
    """

    def transform(self, results: dict) -> dict:
        """Pack the input volume (or image) and the annotations.

        Args:
            results (dict): Result dict from the data pipeline.

        Returns:
            dict: ``inputs`` (torch.Tensor) and ``data_samples``
            (DetDataSample).
        """
        img = results.get('img')
        if img is None or img.ndim < 4:
            return super().transform(results)
        if img.ndim != 4:
            raise ValueError(
                f'{self.__class__.__name__} packs an (H, W), (H, W, C) image '
                f'or a (C, D, H, W) volume, but got img of shape '
                f"{tuple(img.shape)} from {results.get('img_path')}")
        # The parent packs everything but the image; do not modify the
        # caller's dict.
        rest = {key: value for key, value in results.items() if key != 'img'}
        packed_results = super().transform(rest)
        packed_results['inputs'] = to_tensor(np.ascontiguousarray(img))
        return packed_results
