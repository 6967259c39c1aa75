"""Batch pre-processing of (C, D, H, W) volumes for any OpenMMLab model."""
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.registry import MODELS
from mmengine.utils import is_seq_of

__all__ = ['VolumeDataPreprocessor']

VolumeInputs = Union[torch.Tensor, Sequence[torch.Tensor]]


@MODELS.register_module()
class VolumeDataPreprocessor(BaseDataPreprocessor):
    """Normalise, pad and stack volumes into an (N, C, D, H, W) batch.

    The volume counterpart of mmengine's ``ImgDataPreprocessor`` and mmdet's
    ``DetDataPreprocessor``, usable as the ``data_preprocessor`` of mmpretrain
    classifiers, mmdet detectors and mmseg segmentors. It

    - moves the data to the model's device (``cast_data``),
    - casts each (C, D, H, W) volume to float and normalises it per channel
      as ``(x - mean[c]) / std[c]`` (broadcast over D, H, W),
    - pads only H and W, at the bottom / right, with ``pad_value`` to the
      largest (H, W) of the batch rounded up to ``pad_size_divisor`` (D must
      be the same for every volume),
    - stacks the batch to (N, C, D, H, W) and sets the metainfo
      ``batch_input_shape`` (the padded (H, W) of the batch) and
      ``pad_shape`` (the sample's own (H, W) rounded up to
      ``pad_size_divisor``) of every data sample, as mmdet does.

    Args:
        mean (Sequence[float], optional): Mean of each volume channel C. If
            None, the volumes are not normalised. Defaults to None.
        std (Sequence[float], optional): Standard deviation of each volume
            channel C; set it together with ``mean``. Defaults to None.
        pad_size_divisor (int): The padded H and W are multiples of it.
            Defaults to 1.
        pad_value (float): Value of the padded voxels, written after
            normalisation. Defaults to 0.
        boxtype2tensor (bool): Whether to turn mmdet box objects
            (``gt_instances.bboxes`` etc.) of the data samples into plain
            tensors, as mmdet's ``DetDataPreprocessor`` does by default.
            Data samples without boxes are not touched. Defaults to True.
        batch_augments (dict, optional): Only here because mmpretrain's
            ``ImageClassifier`` passes ``train_cfg`` under this name; batch
            augmentations (Mixup, CutMix) are not supported for volumes and
            anything but None raises ``ValueError``. Defaults to None.
        non_blocking (bool): Whether to copy to the device without blocking.
            Defaults to False.

    Examples:
        >>> import torch
        >>> from svd_mm.models.data_preprocessors import (
        ...     VolumeDataPreprocessor)
        >>> preprocessor = VolumeDataPreprocessor(
        ...     mean=[127.5], std=[127.5], pad_size_divisor=8)
        >>> volumes = [
        ...     torch.full((1, 3, 30, 40), 255, dtype=torch.uint8),
        ...     torch.zeros((1, 3, 20, 45), dtype=torch.uint8)]
        >>> inputs = preprocessor(dict(inputs=volumes))['inputs']
        >>> inputs.shape
        torch.Size([2, 1, 3, 32, 48])
        >>> inputs[0, 0, 0, 0, 0].item(), inputs[1, 0, 0, 0, 0].item()
        (1.0, -1.0)
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 boxtype2tensor: bool = True,
                 batch_augments: Optional[dict] = None,
                 non_blocking: Optional[bool] = False):
        super().__init__(non_blocking)
        if (mean is None) != (std is None):
            raise ValueError('mean and std must both be None or both be set, '
                             f'but got mean={mean}, std={std}')
        if mean is not None:
            if len(mean) != len(std) or len(mean) == 0:
                raise ValueError('mean and std need one value per volume '
                                 f'channel, but got mean={list(mean)} and '
                                 f'std={list(std)}')
            if any(s == 0 for s in std):
                raise ValueError(f'std must not contain 0, but got {std}')
            for name, value in (('mean', mean), ('std', std)):
                self.register_buffer(
                    name,
                    torch.tensor(value, dtype=torch.float32).view(-1, 1, 1, 1),
                    False)
        self._enable_normalize = mean is not None
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ValueError('pad_size_divisor must be a positive int, but '
                             f'got {pad_size_divisor!r}')
        if batch_augments is not None:
            raise ValueError(
                f'{self.__class__.__name__} does not support batch '
                f'augmentations (got batch_augments={batch_augments}); '
                'remove `augments` from the classifier train_cfg.')
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value
        self.boxtype2tensor = boxtype2tensor

    def _round_up(self, size: int) -> int:
        return math.ceil(size / self.pad_size_divisor) * self.pad_size_divisor

    def _to_volume_list(self, inputs: VolumeInputs) -> List[torch.Tensor]:
        """Check the inputs and return them as a list of (C, D, H, W)."""
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 5:
                raise ValueError(
                    f'{self.__class__.__name__} expects a list of (C, D, H, '
                    'W) tensors or an (N, C, D, H, W) tensor, but got a '
                    f'tensor of shape {tuple(inputs.shape)}')
            volumes = list(inputs.unbind(0))
        elif is_seq_of(inputs, torch.Tensor) and len(inputs) > 0:
            volumes = list(inputs)
        else:
            raise TypeError(
                f"{self.__class__.__name__} expects data['inputs'] to be a "
                'non-empty list of (C, D, H, W) tensors or an (N, C, D, H, '
                f'W) tensor, but got {type(inputs).__name__}: {inputs!r:.200}')
        for i, volume in enumerate(volumes):
            if volume.dim() != 4:
                raise ValueError(
                    f'{self.__class__.__name__} expects (C, D, H, W) volumes, '
                    f'but input {i} has shape {tuple(volume.shape)}. Convert '
                    'images with RGBToVolume in the pipeline.')
            if self._enable_normalize and volume.shape[0] != len(self.mean):
                raise ValueError(
                    f'Input {i} of shape {tuple(volume.shape)} has '
                    f'{volume.shape[0]} channels, but mean/std have '
                    f'{len(self.mean)} values (one per channel C).')
        depths = [volume.shape[1] for volume in volumes]
        if len(set(depths)) != 1:
            raise ValueError(
                'All volumes of a batch need the same depth D (only H and W '
                'are padded), but got shapes '
                f'{[tuple(volume.shape) for volume in volumes]}')
        return volumes

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and stack the volumes of a batch.

        Args:
            data (dict): Data from the dataloader, ``inputs`` (a list of
                (C, D, H, W) tensors or an (N, C, D, H, W) tensor) and
                optionally ``data_samples``.
            training (bool): Whether the model is training. Unused.

        Returns:
            dict: ``inputs`` (an (N, C, D, H_pad, W_pad) float tensor) and
            ``data_samples`` (the input data samples, or None).
        """
        data = self.cast_data(data)
        volumes = self._to_volume_list(data['inputs'])
        data_samples = data.get('data_samples', None)
        if data_samples is not None and len(data_samples) != len(volumes):
            raise ValueError(f'Got {len(volumes)} inputs but '
                             f'{len(data_samples)} data samples')

        # Each sample's own (H, W) rounded up, as mmdet's pad_shape.
        pad_shapes = [
            tuple(self._round_up(size) for size in v.shape[2:])
            for v in volumes
        ]
        batch_input_shape = (max(h for h, _ in pad_shapes),
                             max(w for _, w in pad_shapes))
        batch = []
        for volume in volumes:
            volume = volume.float()
            if self._enable_normalize:
                volume = (volume - self.mean) / self.std
            pad_h = batch_input_shape[0] - volume.shape[2]
            pad_w = batch_input_shape[1] - volume.shape[3]
            if pad_h or pad_w:
                volume = F.pad(volume, (0, pad_w, 0, pad_h), 'constant',
                               self.pad_value)
            batch.append(volume)
        inputs = torch.stack(batch)

        if data_samples is not None:
            for data_sample, pad_shape in zip(data_samples, pad_shapes):
                if hasattr(data_sample, 'set_metainfo'):
                    data_sample.set_metainfo({
                        'batch_input_shape': batch_input_shape,
                        'pad_shape': pad_shape
                    })
                if self.boxtype2tensor:
                    self._boxtype2tensor(data_sample)
        return {'inputs': inputs, 'data_samples': data_samples}

    @staticmethod
    def _boxtype2tensor(data_sample) -> None:
        """Replace mmdet box objects by their ``tensor`` (in place)."""
        for key in ('gt_instances', 'pred_instances', 'ignored_instances'):
            instances = getattr(data_sample, key, None)
            if instances is None or 'bboxes' not in instances:
                continue
            bboxes = instances.bboxes
            if not isinstance(bboxes, torch.Tensor) and isinstance(
                    getattr(bboxes, 'tensor', None), torch.Tensor):
                instances.bboxes = bboxes.tensor
