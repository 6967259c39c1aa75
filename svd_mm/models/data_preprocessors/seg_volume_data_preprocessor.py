"""Batch pre-processing of volumes and label volumes for mmseg segmentors.

Importing this module needs mmseg."""
from typing import Optional, Sequence, Union

import torch.nn.functional as F
from mmseg.registry import MODELS

from .volume_data_preprocessor import VolumeDataPreprocessor

__all__ = ['SegVolumeDataPreprocessor']


@MODELS.register_module()
class SegVolumeDataPreprocessor(VolumeDataPreprocessor):
    """Normalise, pad and stack volumes and pad their label volumes.

    The 3D counterpart of mmseg's ``SegDataPreProcessor``. The volumes are
    processed by :class:`VolumeDataPreprocessor` (per-channel
    normalisation, H and W padded at the bottom / right to the largest
    (H, W) of the batch rounded up to ``pad_size_divisor``, D kept); the
    ``gt_sem_seg`` of every data sample, a (1, D, H, W) ``VoxelData``, is
    padded in the same way with ``seg_pad_val``, so that each label volume
    has the (D, H, W) of the batch.

    The metainfo keys ``batch_input_shape`` and ``pad_shape`` are written
    as (D, H, W), like ``img_shape`` and ``ori_shape`` of
    :class:`~svd_mm.datasets.transforms.PackSegVolumeInputs`.

    With ``label_dims=2`` the labels are instead the (1, H, W) ``PixelData``
    maps of a 2D segmentor on pseudo-3D volumes (VDT segmentation
    pre-training, :class:`~svd_mm.models.segmentors.
    PseudoVolumeEncoderDecoder`): the metainfo shapes are (H, W)
    (``pad_shape`` is the padded (H, W) of the batch, as in mmseg), the maps
    are padded in H and W in training only (mmseg's test pipelines load
    them at the original image size), and ``padding_size`` (left, right,
    top, bottom) is set from ``img_shape`` as mmseg's
    ``SegDataPreProcessor`` does, so that mmseg's ``postprocess_result``
    cuts the padding off the logits.

    Args:
        mean (Sequence[float], optional): Mean of each volume channel C. If
            None, the volumes are not normalised. Defaults to None.
        std (Sequence[float], optional): Standard deviation of each volume
            channel C. Defaults to None.
        pad_size_divisor (int): The padded H and W are multiples of it.
            Defaults to 1.
        pad_value (float): Value of the padded voxels of the volumes,
            written after normalisation. Defaults to 0.
        seg_pad_val (int): Label of the padded voxels of ``gt_sem_seg``;
            the default is the ``ignore_index`` of the decode heads.
            Defaults to 255.
        label_dims (int): 3 for (1, D, H, W) label volumes and (D, H, W)
            metainfo shapes (3D segmentors), 2 for (1, H, W) label maps and
            (H, W) shapes (2D segmentors on pseudo-3D volumes).
            Defaults to 3.
        non_blocking (bool): Whether to copy to the device without blocking.
            Defaults to False.

    Examples:
        >>> import torch
        >>> from mmseg.structures import SegDataSample
        >>> from svd_mm.models.data_preprocessors import (
        ...     SegVolumeDataPreprocessor)
        >>> from svd_mm.structures import VoxelData
        >>> preprocessor = SegVolumeDataPreprocessor(pad_size_divisor=8)
        >>> samples = [SegDataSample(gt_sem_seg=VoxelData(
        ...     data=torch.ones(1, 4, 10, 12, dtype=torch.long)))]
        >>> data = preprocessor(dict(
        ...     inputs=[torch.zeros(1, 4, 10, 12)], data_samples=samples))
        >>> data['inputs'].shape
        torch.Size([1, 1, 4, 16, 16])
        >>> gt = data['data_samples'][0].gt_sem_seg.data
        >>> gt.shape, gt[0, 0, 15, 15].item()
        (torch.Size([1, 4, 16, 16]), 255)
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 seg_pad_val: int = 255,
                 label_dims: int = 3,
                 non_blocking: Optional[bool] = False):
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            boxtype2tensor=False,
            non_blocking=non_blocking)
        if label_dims not in (2, 3):
            raise ValueError('label_dims must be 2 (label maps of 2D '
                             'segmentors) or 3 (label volumes), but got '
                             f'{label_dims!r}')
        self.seg_pad_val = seg_pad_val
        self.label_dims = label_dims

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and stack the volumes; pad the label volumes.

        Args:
            data (dict): Data from the dataloader, ``inputs`` (a list of
                (C, D, H, W) tensors or an (N, C, D, H, W) tensor) and
                optionally ``data_samples`` (SegDataSample).
            training (bool): Whether the model is training; with
                ``label_dims=2`` the label maps are padded only then.

        Returns:
            dict: ``inputs`` (an (N, C, D, H_pad, W_pad) float tensor) and
            ``data_samples`` (with padded ``gt_sem_seg``, or None).
        """
        data = super().forward(data, training)
        inputs = data['inputs']
        data_samples = data['data_samples']
        if data_samples is None:
            return data
        if self.label_dims == 2:
            self._pad_label_maps(data_samples, inputs.shape[-2:], training)
        else:
            self._pad_label_volumes(data_samples, inputs.shape[2:])
        return data

    def _pad_label(self, index: int, data_sample, shape: tuple) -> None:
        """Pad ``gt_sem_seg`` (1, *shape') at the end of H and W to
        ``shape``, if the sample has labels."""
        if 'gt_sem_seg' not in data_sample:
            return
        gt = data_sample.gt_sem_seg.data
        if gt.dim() != len(shape) + 1 or gt.shape[0] != 1 or any(
                g > s for g, s in zip(gt.shape[1:], shape)) or (
                    len(shape) == 3 and gt.shape[1] != shape[0]):
            axes = '(1, D, H, W)' if len(shape) == 3 else '(1, H, W)'
            raise ValueError(
                f'gt_sem_seg of sample {index} has shape {tuple(gt.shape)}, '
                f'which does not fit {axes} inside the padded batch '
                f'{tuple(shape)}; img_path: '
                f"{data_sample.metainfo.get('img_path')}")
        pad = (0, shape[-1] - gt.shape[-1], 0, shape[-2] - gt.shape[-2])
        if any(pad):
            # a new element of the same type: its size changes
            field = data_sample.gt_sem_seg
            data_sample.gt_sem_seg = type(field)(
                metainfo=field.metainfo,
                data=F.pad(gt, pad, 'constant', self.seg_pad_val))

    def _pad_label_volumes(self, data_samples, shape: tuple) -> None:
        """(D, H, W) metainfo and (1, D, H, W) label volumes."""
        depth, height, width = shape
        for i, data_sample in enumerate(data_samples):
            pad_h, pad_w = data_sample.metainfo['pad_shape']
            data_sample.set_metainfo({
                'batch_input_shape': (depth, height, width),
                'pad_shape': (depth, pad_h, pad_w)
            })
            self._pad_label(i, data_sample, (depth, height, width))

    def _pad_label_maps(self, data_samples, shape: tuple,
                        training: bool) -> None:
        """(H, W) metainfo with ``padding_size``; pad the (1, H, W) label
        maps in training (as mmseg: test maps keep the original size)."""
        height, width = shape
        for i, data_sample in enumerate(data_samples):
            img_h, img_w = data_sample.metainfo.get('img_shape', shape)[:2]
            data_sample.set_metainfo({
                'pad_shape': (height, width),
                'padding_size': [0, width - img_w, 0, height - img_h]
            })
            if training:
                self._pad_label(i, data_sample, (height, width))
