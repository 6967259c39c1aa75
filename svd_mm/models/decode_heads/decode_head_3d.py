"""Base class of the 3D decode heads. Importing this module needs mmseg."""
from typing import List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.utils import SampleList
from torch import Tensor

__all__ = ['BaseDecodeHead3D']


class BaseDecodeHead3D(BaseDecodeHead):
    """Base class of the decode heads of 3D segmentors.

    mmseg's ``BaseDecodeHead`` with 3D layers: it keeps the constructor
    arguments, ``in_index`` / ``input_transform``, the loss list
    ``loss_decode``, ``ignore_index``, the optional pixel ``sampler``,
    ``cls_seg`` and ``loss`` / ``predict``, and makes 3D what is 2D there:

    - ``conv_seg`` is a 1x1x1 ``nn.Conv3d`` and the dropout an
      ``nn.Dropout3d``; ``conv_cfg`` / ``norm_cfg`` default to
      ``Conv3d`` / ``BN3d`` for the layers of the subclasses;
    - ``input_transform='resize_concat'`` resizes the features trilinearly;
    - ``loss_by_feat`` resizes the (N, K, D', H', W') logits trilinearly to
      the (D, H, W) of the labels before the losses;
    - ``predict_by_feat`` resizes them to ``batch_input_shape`` (D, H, W) of
      the metainfo, the size of the network input (the whole padded volume,
      or one window of the sliding-window inference).

    mmseg's 2D losses that reduce over voxels work unchanged on 5-D logits
    (``CrossEntropyLoss``, also with ``use_sigmoid=True`` and
    ``out_channels=1``); ``DiceLoss3D`` is the Dice loss for volumes.

    Args:
        in_channels (int | Sequence[int]): Input channels.
        channels (int): Channels after the head's layers, before
            ``conv_seg``.
        num_classes (int): Number of classes, background included.
        out_channels (int, optional): Output channels of ``conv_seg``:
            ``num_classes``, or 1 for binary segmentation with a sigmoid and
            ``threshold``. Defaults to None (``num_classes``).
        threshold (float, optional): Threshold of the sigmoid for
            ``out_channels == 1``. Defaults to None (0.3, as mmseg).
        dropout_ratio (float): Ratio of the ``nn.Dropout3d`` before
            ``conv_seg``. Defaults to 0.1.
        conv_cfg (dict): Config of the conv layers.
            Defaults to ``dict(type='Conv3d')``.
        norm_cfg (dict, optional): Config of the norm layers.
            Defaults to ``dict(type='BN3d', requires_grad=True)``.
        act_cfg (dict): Config of the activations.
            Defaults to ``dict(type='ReLU')``.
        in_index (int | Sequence[int]): Index (indices) of the input
            feature(s). Defaults to -1.
        input_transform (str, optional): ``'resize_concat'`` (resize to the
            first selected feature and concatenate), ``'multiple_select'``
            (a list of features) or None (one feature). Defaults to None.
        loss_decode (dict | Sequence[dict]): Config(s) of the losses, whose
            ``loss_name`` starts with ``loss_``; losses of the same name are
            summed. Defaults to
            ``dict(type='CrossEntropyLoss', use_sigmoid=False,
            loss_weight=1.0)``.
        ignore_index (int): Label ignored by the losses and the accuracy.
            Defaults to 255.
        sampler (dict, optional): Config of mmseg's voxel sampler, e.g.
            ``dict(type='OHEMPixelSampler')``. Defaults to None.
        align_corners (bool): ``align_corners`` of the trilinear resizing.
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to ``dict(type='Normal', std=0.01,
            override=dict(name='conv_seg'))``.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 channels: int,
                 *,
                 conv_cfg: dict = dict(type='Conv3d'),
                 norm_cfg: dict = dict(type='BN3d', requires_grad=True),
                 in_index: Union[int, Sequence[int]] = -1,
                 **kwargs):
        if isinstance(in_index, list):
            in_index = tuple(in_index)
        if isinstance(in_channels, list):
            in_channels = tuple(in_channels)
        super().__init__(
            in_channels,
            channels,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            in_index=in_index,
            **kwargs)
        # the parent builds these in 2D
        self.conv_seg = nn.Conv3d(channels, self.out_channels, kernel_size=1)
        self.dropout = nn.Dropout3d(self.dropout_ratio) \
            if self.dropout_ratio > 0 else None

    def _resize(self,
                x: Tensor,
                size: Sequence[int],
                mode: str = 'trilinear') -> Tensor:
        """Resize an (N, C, D, H, W) tensor to ``size`` (``'trilinear'``
        with ``align_corners``, or ``'nearest'``)."""
        size = tuple(int(s) for s in size)
        if tuple(x.shape[2:]) == size:
            return x
        return F.interpolate(
            x,
            size=size,
            mode=mode,
            align_corners=self.align_corners if mode == 'trilinear' else None)

    def _transform_inputs(
            self, inputs: Sequence[Tensor]) -> Union[Tensor, List[Tensor]]:
        """Select (and, for ``'resize_concat'``, resize and concatenate)
        the input features.

        Args:
            inputs (Sequence[Tensor]): Multi-level (N, C_i, D_i, H_i, W_i)
                features.

        Returns:
            Tensor | list[Tensor]: The feature(s) the head works on.
        """
        for i, x in enumerate(inputs):
            if x.dim() != 5:
                raise ValueError(
                    f'{self.__class__.__name__} expects (N, C, D, H, W) '
                    f'features, but input {i} has shape {tuple(x.shape)}')
        if self.input_transform == 'resize_concat':
            selected = [inputs[i] for i in self.in_index]
            size = selected[0].shape[2:]
            return torch.cat([self._resize(x, size) for x in selected], dim=1)
        return super()._transform_inputs(inputs)

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Compute the losses and the voxel accuracy.

        Args:
            seg_logits (Tensor): (N, K, D', H', W') logits of ``forward``.
            batch_data_samples (list[SegDataSample]): Data samples with a
                (1, D, H, W) ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: One entry per ``loss_name`` of
            ``loss_decode`` and ``acc_seg``.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)
        if seg_label.dim() != 5:
            raise ValueError(
                'gt_sem_seg of the data samples must be (1, D, H, W), but '
                f'the stacked labels have shape {tuple(seg_label.shape)}')
        seg_logits = self._resize(seg_logits, seg_label.shape[2:])
        seg_weight = None
        if self.sampler is not None:
            seg_weight = self.sampler.sample(seg_logits, seg_label)
        seg_label = seg_label.squeeze(1)

        losses_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        loss = dict()
        for loss_decode in losses_decode:
            value = loss_decode(
                seg_logits,
                seg_label,
                weight=seg_weight,
                ignore_index=self.ignore_index)
            loss[loss_decode.loss_name] = loss.get(loss_decode.loss_name,
                                                   0) + value
        loss['acc_seg'] = accuracy(
            seg_logits, seg_label, ignore_index=self.ignore_index)
        return loss

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Resize the logits to the size of the network input.

        Args:
            seg_logits (Tensor): (N, K, D', H', W') logits of ``forward``.
            batch_img_metas (list[dict]): Metainfo; the first one's
                ``batch_input_shape`` (D, H, W) is the target size.

        Returns:
            Tensor: (N, K, D, H, W) logits.
        """
        size = batch_img_metas[0].get('batch_input_shape')
        if size is None or len(size) != 3:
            raise KeyError(
                f'{self.__class__.__name__}.predict_by_feat needs the '
                "metainfo 'batch_input_shape' (D, H, W), but got "
                f'{size!r}; predict through EncoderDecoder3D')
        return self._resize(seg_logits, size)
