"""2D semantic segmentor on pseudo-3D volumes. Importing this module needs
mmseg."""
from typing import List, Optional, Tuple

from mmengine.config import ConfigDict
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

__all__ = ['PseudoVolumeEncoderDecoder']


@MODELS.register_module()
class PseudoVolumeEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` for (N, C, D, H, W) inputs and (H, W)
    label maps: semantic-segmentation pre-training through the VDT.

    An image made a volume (1, 3, H, W) by
    :class:`~svd_mm.datasets.transforms.RGBToVolume` goes through a 3D
    backbone in pre-train mode (no stride along D), a neck that collapses D
    (:class:`~svd_mm.models.necks.GTMNeck`) and any 2D mmseg decode head
    (e.g. ``UPerHead``); the targets, the losses, the predictions and the
    ``IoUMetric`` stay mmseg's 2D ones. Use it with
    ``data_preprocessor=dict(type='SegVolumeDataPreprocessor',
    label_dims=2)`` and :class:`~svd_mm.datasets.transforms.
    PackSegVolumeInputs` (which packs the (H, W) map as ``PixelData``).

    Everything is the parent's except where the input's extra axis matters:

    - ``predict`` without data samples takes the (H, W) of the last two
      axes as the image shape;
    - ``slide_inference`` runs mmseg's sliding window over H and W on the
      (N, C * D, H, W) view of the volumes, and ``extract_feat`` restores
      (N, C, D, h, w) for each window, so windows, overlaps and averaging
      are mmseg's own.

    Args:
        backbone (dict): Config of the 3D backbone.
        decode_head (dict): Config of the 2D decode head.
        neck (dict | list[dict], optional): Config of the neck, which must
            turn the 3D levels into 2D ones (``GTMNeck``). Defaults to None.
        test_cfg (dict, optional): Testing config (``mode='whole'`` or
            ``'slide'`` with (H, W) ``crop_size`` and ``stride``, as in
            mmseg). Defaults to None.
        auxiliary_head, train_cfg, data_preprocessor, pretrained, init_cfg:
            As in :class:`~svd_mm.models.segmentors.EncoderDecoder3D` (the
            auxiliary heads are 2D). Default to None.

    Examples:
        >>> import torch
        >>> from mmengine.registry import DefaultScope
        >>> from mmseg.registry import MODELS
        >>> import svd_mm  # noqa: F401
        >>> channels = [4, 8, 16, 32]
        >>> cfg = dict(
        ...     type='PseudoVolumeEncoderDecoder',
        ...     backbone=dict(type='ResNet3D', depth=18, base_channels=4,
        ...                   out_indices=(0, 1, 2, 3)),
        ...     neck=dict(type='GTMNeck', in_channels=channels,
        ...               depths=[3, 3, 3, 3]),
        ...     decode_head=dict(type='UPerHead', in_channels=channels,
        ...                      in_index=[0, 1, 2, 3], channels=8,
        ...                      num_classes=5),
        ...     data_preprocessor=dict(type='SegVolumeDataPreprocessor',
        ...                            label_dims=2),
        ...     test_cfg=dict(mode='slide', crop_size=(64, 64),
        ...                   stride=(48, 48)))
        >>> with DefaultScope.overwrite_default_scope('mmseg'):
        ...     model = MODELS.build(cfg).eval()
        >>> with torch.no_grad():
        ...     results = model.predict(torch.rand(1, 1, 3, 80, 96))
        >>> results[0].seg_logits.shape, results[0].pred_sem_seg.shape
        ((80, 96), (80, 96))
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 auxiliary_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        # mmseg reads test_cfg.mode etc. as attributes
        test_cfg = None if test_cfg is None else ConfigDict(test_cfg)
        super().__init__(backbone, decode_head, neck, auxiliary_head,
                         train_cfg, test_cfg, data_preprocessor, pretrained,
                         init_cfg)
        # (C, D) of the volumes while slide_inference folds them
        self._folded: Optional[Tuple[int, int]] = None

    def _check_volumes(self, inputs: Tensor) -> None:
        if inputs.dim() != 5:
            raise ValueError(
                f'{self.__class__.__name__} expects (N, C, D, H, W) volumes '
                '(RGBToVolume in the pipeline, SegVolumeDataPreprocessor as '
                f'data_preprocessor), but got shape {tuple(inputs.shape)}')

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Backbone (and neck) features of (N, C, D, H, W) volumes, or of the
        (N, C * D, h, w) windows of :meth:`slide_inference`.

        Args:
            inputs (Tensor): The volumes or windows.

        Returns:
            list[Tensor]: The 2D features (N, C_i, H_i, W_i) of the neck.
        """
        if self._folded is not None and inputs.dim() == 4:
            inputs = inputs.unflatten(1, self._folded)
        self._check_volumes(inputs)
        return super().extract_feat(inputs)

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """mmseg's sliding-window inference over H and W of the volumes.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            batch_img_metas (list[dict]): Metainfo of the images.

        Returns:
            Tensor: (N, K, H, W) averaged logits.
        """
        self._check_volumes(inputs)
        # extract_feat unfolds the (N, C * D, h, w) windows meanwhile
        self._folded = tuple(inputs.shape[1:3])
        try:
            return super().slide_inference(
                inputs.flatten(1, 2), batch_img_metas)
        finally:
            self._folded = None

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Predict the (H, W) segmentation of a batch of volumes.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            data_samples (list[SegDataSample], optional): Data samples with
                the (H, W) metainfo of the images. Defaults to None (the
                predictions keep the (H, W) of ``inputs``).

        Returns:
            list[SegDataSample]: ``seg_logits`` and ``pred_sem_seg``
            (PixelData) at ``ori_shape``.
        """
        self._check_volumes(inputs)
        if data_samples is None:
            shape = tuple(inputs.shape[-2:])
            batch_img_metas = [
                dict(
                    ori_shape=shape,
                    img_shape=shape,
                    pad_shape=shape,
                    padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
            seg_logits = self.inference(inputs, batch_img_metas)
            return self.postprocess_result(seg_logits, None)
        return super().predict(inputs, data_samples)
