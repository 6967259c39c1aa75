"""Encoder-decoder segmentor for volumes. Importing this module needs
mmseg."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from svd_mm.models.utils.connected_components import \
    largest_connected_component
from svd_mm.structures import VoxelData

__all__ = ['EncoderDecoder3D']

Triple = Tuple[int, int, int]


@MODELS.register_module()
class EncoderDecoder3D(EncoderDecoder):
    """Encoder-decoder segmentor for (N, C, D, H, W) volumes.

    mmseg's ``EncoderDecoder`` with the parts that are 2D there made 3D; the
    constructor, ``extract_feat``, ``loss`` (decode and auxiliary heads),
    ``whole_inference`` and ``_forward`` are the parent's. Use it with 3D
    decode heads (:class:`~svd_mm.models.decode_heads.BaseDecodeHead3D`)
    and ``data_preprocessor=dict(type='SegVolumeDataPreprocessor')``.

    - ``encode_decode`` resizes the logits to the (D, H, W) of its input
      (the head reads it as ``batch_input_shape``).
    - ``slide_inference`` slides a (D, H, W) window over the volume with
      MONAI's ``sliding_window_inference`` (see :meth:`slide_inference`).
      Overlapping logits are averaged with the weight of each window's
      voxel: ``'constant'`` weighs all voxels 1 (a plain mean),
      ``'gaussian'`` weighs them with :meth:`gaussian_weight` (as nnU-Net),
      so that window borders count less.
    - ``postprocess_result`` cuts the padding of the data preprocessor off
      (keeps ``img_shape`` (D, H, W)), resizes the logits trilinearly to
      ``ori_shape`` (D, H, W), takes the argmax (or the sigmoid and the
      head's ``threshold`` for one output channel) and optionally keeps
      only the largest connected component of the foreground. Test-time
      flips are not undone.

    ``test_cfg`` keys:

    - ``mode`` (str): ``'whole'`` or ``'slide'``. Defaults to 'whole'.
    - ``crop_size`` (tuple[int]): (D, H, W) of the window ('slide').
    - ``stride`` (tuple[int]): (D, H, W) step of the windows, at most
      ``crop_size`` ('slide').
    - ``batch_windows`` (int): Windows per forward pass. Defaults to 1.
    - ``blend`` (str): ``'constant'`` or ``'gaussian'``.
      Defaults to 'constant'.
    - ``sigma_scale`` (float): Gaussian standard deviation over window
      size. Defaults to 0.125.
    - ``keep_largest_component`` (bool): Whether to set all foreground
      voxels (label > 0) outside the largest 3D connected component of the
      foreground to 0 (background), as in liver segmentation. Defaults to
      False.

    Args:
        backbone (dict): Config of the 3D backbone.
        decode_head (dict): Config of the 3D decode head.
        neck (dict, optional): Config of the neck. Defaults to None.
        auxiliary_head (dict | list[dict], optional): Config(s) of the
            auxiliary heads. Defaults to None.
        train_cfg (dict, optional): Training config. Defaults to None.
        test_cfg (dict, optional): Testing config, see above.
            Defaults to None (whole-volume inference).
        data_preprocessor (dict, optional): Config of the data
            preprocessor, e.g. ``dict(type='SegVolumeDataPreprocessor',
            mean=[...], std=[...])``. Defaults to None.
        pretrained (str, optional): Kept for mmseg compatibility; load
            backbone weights with the backbone's ``init_cfg`` instead.
            Defaults to None.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None.

    Examples:
        >>> import torch
        >>> from mmengine.registry import DefaultScope
        >>> from mmseg.registry import MODELS
        >>> import svd_mm  # noqa: F401
        >>> cfg = dict(
        ...     type='EncoderDecoder3D',
        ...     backbone=dict(
        ...         type='ResNet3D', depth=18, base_channels=4,
        ...         num_stages=3, strides=(2, 2, 2), slice_strides=(1, 2, 2),
        ...         dilations=(1, 1, 1), stem_stride=1, with_maxpool=False,
        ...         with_stem_out=True, out_indices=(0, 1, 2)),
        ...     decode_head=dict(
        ...         type='UNetHead3D', in_channels=(4, 4, 8, 16), channels=4,
        ...         num_classes=3),
        ...     data_preprocessor=dict(type='SegVolumeDataPreprocessor'),
        ...     test_cfg=dict(mode='slide', crop_size=(8, 32, 32),
        ...                   stride=(4, 16, 16), batch_windows=4))
        >>> with DefaultScope.overwrite_default_scope('mmseg'):
        ...     model = MODELS.build(cfg).eval()
        >>> with torch.no_grad():
        ...     results = model.predict(torch.rand(1, 1, 12, 40, 36))
        >>> results[0].seg_logits.data.shape
        torch.Size([3, 12, 40, 36])
        >>> results[0].pred_sem_seg.shape
        (12, 40, 36)
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
        self._check_test_cfg(test_cfg)
        super().__init__(backbone, decode_head, neck, auxiliary_head,
                         train_cfg, test_cfg, data_preprocessor, pretrained,
                         init_cfg)

    @staticmethod
    def _to_triple(value, name: str) -> Triple:
        if isinstance(value, int):
            value = (value, ) * 3
        value = tuple(value) if isinstance(value, Sequence) else (value, )
        if len(value) != 3 or not all(
                isinstance(v, int) and v >= 1 for v in value):
            raise ValueError(f'test_cfg.{name} must be three positive ints '
                             f'(D, H, W), but got {value}')
        return value

    @classmethod
    def _check_test_cfg(cls, test_cfg: Optional[dict]) -> None:
        """Raise ``ValueError`` for a test_cfg the inference cannot use."""
        if test_cfg is None:
            return
        mode = test_cfg.get('mode', 'whole')
        if mode not in ('whole', 'slide'):
            raise ValueError("test_cfg.mode must be 'whole' or 'slide', but "
                             f'got {mode!r}')
        if mode != 'slide':
            return
        for key in ('crop_size', 'stride'):
            if key not in test_cfg:
                raise KeyError(f"test_cfg with mode='slide' needs {key!r}")
        crop_size = cls._to_triple(test_cfg['crop_size'], 'crop_size')
        stride = cls._to_triple(test_cfg['stride'], 'stride')
        if any(s > c for s, c in zip(stride, crop_size)):
            raise ValueError(
                f'test_cfg.stride {stride} must not exceed crop_size '
                f'{crop_size} along any axis, or voxels are skipped')
        batch_windows = test_cfg.get('batch_windows', 1)
        if not isinstance(batch_windows, int) or batch_windows < 1:
            raise ValueError('test_cfg.batch_windows must be a positive '
                             f'int, but got {batch_windows!r}')
        blend = test_cfg.get('blend', 'constant')
        if blend not in ('constant', 'gaussian'):
            raise ValueError("test_cfg.blend must be 'constant' or "
                             f"'gaussian', but got {blend!r}")
        if test_cfg.get('sigma_scale', 0.125) <= 0:
            raise ValueError('test_cfg.sigma_scale must be > 0, but got '
                             f"{test_cfg['sigma_scale']}")

    def _test_cfg_get(self, key: str, default=None):
        return default if self.test_cfg is None else self.test_cfg.get(
            key, default)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Encode volumes with the backbone (and neck) and decode them into
        logits of the (D, H, W) of ``inputs``.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes or windows.
            batch_img_metas (list[dict]): Metainfo of the volumes.

        Returns:
            Tensor: (N, K, D, H, W) logits.
        """
        x = self.extract_feat(inputs)
        size = tuple(inputs.shape[2:])
        metas = [
            dict(meta, batch_input_shape=size) for meta in batch_img_metas
        ]
        return self.decode_head.predict(x, metas, self.test_cfg)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Predict the segmentation of a batch of volumes.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            data_samples (list[SegDataSample], optional): Data samples with
                the metainfo ``img_shape`` and ``ori_shape`` (D, H, W).
                Defaults to None (the predictions keep the input size).

        Returns:
            list[SegDataSample]: ``seg_logits`` (VoxelData, (K, D, H, W))
            and ``pred_sem_seg`` (VoxelData, (1, D, H, W) int64) at
            ``ori_shape``.
        """
        if inputs.dim() != 5:
            raise ValueError(
                f'{self.__class__.__name__} expects (N, C, D, H, W) inputs, '
                f'but got shape {tuple(inputs.shape)}')
        return super().predict(inputs, data_samples)

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Run whole-volume or sliding-window inference (``test_cfg.mode``).

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            batch_img_metas (list[dict]): Metainfo of the volumes.

        Returns:
            Tensor: (N, K, D, H, W) logits of the (padded) input size.
        """
        if self._test_cfg_get('mode', 'whole') == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.whole_inference(inputs, batch_img_metas)

    @staticmethod
    def gaussian_weight(crop_size: Sequence[int],
                        sigma_scale: float = 0.125,
                        device=None,
                        dtype=torch.float32) -> Tensor:
        """Gaussian importance weights of a window.

        Args:
            crop_size (Sequence[int]): (D, H, W) of the window.
            sigma_scale (float): Standard deviation over window length.
                Defaults to 0.125.
            device (torch.device, optional): Device of the weights.
            dtype (torch.dtype): dtype of the weights.

        Returns:
            Tensor: (D, H, W) weights
            ``exp(-sum_a (x_a - (n_a - 1) / 2)^2 / (2 (sigma_scale n_a)^2))``
            divided by their maximum; weights that underflow to 0 are set to
            the smallest positive one.
        """
        weight = torch.ones((), dtype=torch.float64)
        for n in crop_size:
            coord = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
            gauss = torch.exp(-coord**2 / (2 * (sigma_scale * n)**2))
            weight = weight.unsqueeze(-1) * (gauss / gauss.max())
        weight = weight.to(dtype)
        positive = weight[weight > 0]
        weight = weight.clamp_min(positive.min())
        return weight.to(device)

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Inference with overlapping (D, H, W) windows through MONAI's
        :func:`~monai.inferers.sliding_window_inference`.

        A volume smaller than ``crop_size`` is first padded at the end (as
        the data preprocessor pads). ``stride`` becomes MONAI's per-axis
        ``overlap`` (a hair below ``1 - stride / crop_size``, so that MONAI's
        ``int(crop * (1 - overlap))`` gives ``stride`` back exactly); MONAI
        places the windows at ``0, stride, ...`` plus one aligned to the end
        of the axis. ``batch_windows`` windows of every volume of the batch
        go through the network at once. The Gaussian blend uses
        :meth:`gaussian_weight` as MONAI's ``roi_weight_map``.

        Args:
            inputs (Tensor): (N, C, D, H, W) volumes.
            batch_img_metas (list[dict]): Metainfo of the volumes.

        Returns:
            Tensor: (N, K, D, H, W) blended logits.
        """
        from monai.inferers import sliding_window_inference
        crop_size = self._to_triple(self.test_cfg['crop_size'], 'crop_size')
        stride = self._to_triple(self.test_cfg['stride'], 'stride')
        size = tuple(inputs.shape[2:])
        padded = tuple(max(s, c) for s, c in zip(size, crop_size))
        if padded != size:
            pad_value = getattr(self.data_preprocessor, 'pad_value', 0)
            inputs = F.pad(inputs,
                           (0, padded[2] - size[2], 0, padded[1] - size[1], 0,
                            padded[0] - size[0]), 'constant', pad_value)
        weight = None
        if self._test_cfg_get('blend', 'constant') == 'gaussian':
            weight = self.gaussian_weight(
                crop_size, self._test_cfg_get('sigma_scale', 0.125),
                inputs.device, inputs.dtype)
        metas = batch_img_metas[:1]
        preds = sliding_window_inference(
            inputs,
            roi_size=crop_size,
            sw_batch_size=self._test_cfg_get('batch_windows', 1) *
            inputs.shape[0],
            predictor=lambda crops: self.encode_decode(
                crops, metas * crops.shape[0]),
            overlap=[max(c - st - 1e-3, 0) / c
                     for c, st in zip(crop_size, stride)],
            mode='constant',
            roi_weight_map=weight)
        return preds[:, :, :size[0], :size[1], :size[2]]

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Turn the logits into data samples at the original volume size.

        Args:
            seg_logits (Tensor): (N, K, D, H, W) logits of the batch.
            data_samples (list[SegDataSample], optional): Data samples with
                ``img_shape`` and ``ori_shape`` (D, H, W) metainfo. If None,
                new ones are made and the logits keep their size.

        Returns:
            list[SegDataSample]: With ``seg_logits`` (VoxelData,
            (K, D, H, W); probabilities for one output channel) and
            ``pred_sem_seg`` (VoxelData, (1, D, H, W) int64).
        """
        batch_size, num_channels = seg_logits.shape[:2]
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        for i in range(batch_size):
            logits = seg_logits[i:i + 1]
            if not only_prediction:
                meta = data_samples[i].metainfo
                img_shape = tuple(meta.get('img_shape', logits.shape[2:]))
                ori_shape = tuple(meta.get('ori_shape', img_shape))
                if len(img_shape) != 3 or len(ori_shape) != 3:
                    raise ValueError(
                        'img_shape and ori_shape of the metainfo must be '
                        f'(D, H, W), but got {img_shape} and {ori_shape} '
                        f"for {meta.get('img_path')}; pack volumes with "
                        'PackSegVolumeInputs')
                # cut off the padding at the end of each axis
                logits = logits[:, :, :img_shape[0], :img_shape[1], :
                                img_shape[2]]
                if tuple(logits.shape[2:]) != ori_shape:
                    logits = F.interpolate(
                        logits,
                        size=ori_shape,
                        mode='trilinear',
                        align_corners=self.align_corners)
            logits = logits[0]
            if num_channels > 1:
                # the indices of argmax (the first maximum), ~8 times faster
                # than argmax(dim=0) on the CPU for whole CT volumes
                pred = logits.max(dim=0, keepdim=True)[1]
            else:
                logits = logits.sigmoid()
                pred = (logits > self.decode_head.threshold).long()
            if self._test_cfg_get('keep_largest_component', False):
                foreground = largest_connected_component(pred[0] > 0)
                pred = pred * foreground[None].long()
            data_samples[i].set_data({
                'seg_logits': VoxelData(data=logits),
                'pred_sem_seg': VoxelData(data=pred)
            })
        return data_samples
