"""The 3D U-Net of Models Genesis as an mmseg segmentor. Importing this
module needs mmseg.

Models Genesis (Zhou et al., "Models Genesis: Generic Autodidactic Models
for 3D Medical Image Analysis", MICCAI 2019) pre-trains a 3D U-Net
(MrGiovanni/ModelsGenesis, ``pytorch/unet3d.py``) by restoring distorted CT
cubes and fine-tunes the whole encoder-decoder for segmentation. This module
rebuilds that network with the same parameter names, so that the released
``Genesis_Chest_CT.pt`` loads without any unused or missing tensor.
"""
import logging
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from torch import Tensor

from svd_mm.models.decode_heads.decode_head_3d import BaseDecodeHead3D
from svd_mm.models.utils.baseline_importers import convert_genesis
from svd_mm.models.utils.weight_transfer import (adapt_first_conv_weight,
                                                 read_state_dict)

from .encoder_decoder_3d import EncoderDecoder3D

__all__ = ['UNet3DGenesis']


class GenesisConv(nn.Module):
    """3x3x3 convolution (with bias), norm and activation, named as in
    Models Genesis (``conv1``, ``bn1``, ``activation``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        norm_cfg (dict): Config of the norm layer.
        act_cfg (dict): Config of the activation; a ``PReLU`` gets one
            parameter per channel, as in Models Genesis.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict,
                 act_cfg: dict) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(
            in_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        act_cfg = dict(act_cfg)
        if act_cfg['type'] == 'PReLU':
            act_cfg.setdefault('num_parameters', out_channels)
        self.activation = build_activation_layer(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.bn1(self.conv1(x)))


class GenesisDown(nn.Module):
    """Two :class:`GenesisConv` (``ops``), then a 2x2x2 max-pool unless it
    is the bottom level.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Output channels of the first convolution.
        out_channels (int): Output channels of the second convolution.
        with_pool (bool): Whether to max-pool the output.
        norm_cfg (dict): Config of the norm layers.
        act_cfg (dict): Config of the activations.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 with_pool: bool, norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.ops = nn.Sequential(
            GenesisConv(in_channels, mid_channels, norm_cfg, act_cfg),
            GenesisConv(mid_channels, out_channels, norm_cfg, act_cfg))
        self.maxpool = nn.MaxPool3d(2) if with_pool else None

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Return the (pooled) output and the skip feature."""
        skip = self.ops(x)
        out = skip if self.maxpool is None else self.maxpool(skip)
        return out, skip


class GenesisUp(nn.Module):
    """2x2x2 transposed convolution (``up_conv``), concatenation with the
    skip feature and two :class:`GenesisConv` (``ops``).

    Args:
        in_channels (int): Input channels (also those of ``up_conv``'s
            output).
        skip_channels (int): Channels of the skip feature.
        out_channels (int): Output channels.
        norm_cfg (dict): Config of the norm layers.
        act_cfg (dict): Config of the activations.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.up_conv = nn.ConvTranspose3d(
            in_channels, in_channels, kernel_size=2, stride=2)
        self.ops = nn.Sequential(
            GenesisConv(in_channels + skip_channels, out_channels, norm_cfg,
                        act_cfg),
            GenesisConv(out_channels, out_channels, norm_cfg, act_cfg))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.ops(torch.cat((self.up_conv(x), skip), dim=1))


class GenesisUNet3DBackbone(BaseModule):
    """Encoder and decoder of the Models Genesis 3D U-Net.

    With ``base_channels=b`` (32 in Models Genesis): four down levels
    ``down_tr64`` .. ``down_tr512`` with 2b, 4b, 8b, 16b output channels
    (three 2x2x2 max-pools) and three up levels ``up_tr256``, ``up_tr128``,
    ``up_tr64`` with 8b, 4b, 2b output channels.

    Args:
        in_channels (int): Input channels C. Defaults to 1.
        base_channels (int): b. Defaults to 32.
        norm_cfg (dict): Config of the norm layers.
            Defaults to ``dict(type='BN3d')``.
        act_cfg (dict): Config of the activations.
            Defaults to ``dict(type='ReLU', inplace=True)``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to None (PyTorch's default initialization, as Models
            Genesis).
    """

    # a multiple of 2 ** 3 along each axis: three max-pools
    size_divisor = 8

    def __init__(self,
                 in_channels: int = 1,
                 base_channels: int = 32,
                 norm_cfg: dict = dict(type='BN3d'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        b = base_channels
        channels = in_channels
        for level, name in enumerate(
                ('down_tr64', 'down_tr128', 'down_tr256', 'down_tr512')):
            self.add_module(
                name,
                GenesisDown(channels, b * 2**level, b * 2**(level + 1), level
                            < 3, norm_cfg, act_cfg))
            channels = b * 2**(level + 1)
        for level, name in zip((2, 1, 0), ('up_tr256', 'up_tr128', 'up_tr64')):
            self.add_module(
                name,
                GenesisUp(channels, b * 2**(level + 1), b * 2**(level + 1),
                          norm_cfg, act_cfg))
            channels = b * 2**(level + 1)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Encode and decode (N, C, D, H, W) volumes.

        Args:
            x (Tensor): (N, C, D, H, W), D, H and W multiples of 8.

        Returns:
            tuple[Tensor]: The decoder output (N, 2b, D, H, W).
        """
        if x.dim() != 5 or x.size(1) != self.in_channels or any(
                s % self.size_divisor for s in x.shape[2:]):
            raise ValueError(
                'the Models Genesis U-Net expects (N, '
                f'{self.in_channels}, D, H, W) volumes with D, H and W '
                f'multiples of {self.size_divisor} (three 2x2x2 max-pools), '
                f'got shape {tuple(x.shape)}; crop or pad the volumes, e.g. '
                'with test_cfg mode slide and a crop_size of multiples of '
                f'{self.size_divisor}')
        x, skip64 = self.down_tr64(x)
        x, skip128 = self.down_tr128(x)
        x, skip256 = self.down_tr256(x)
        x, _ = self.down_tr512(x)
        x = self.up_tr256(x, skip256)
        x = self.up_tr128(x, skip128)
        x = self.up_tr64(x, skip64)
        return (x, )


class GenesisOutputHead(BaseDecodeHead3D):
    """The output 1x1x1 convolution of Models Genesis (``conv_seg``, with
    its losses), on the decoder output."""

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Return (N, out_channels, D, H, W) logits."""
        return self.cls_seg(self._transform_inputs(inputs))


@MODELS.register_module()
class UNet3DGenesis(EncoderDecoder3D):
    """The 3D U-Net of Models Genesis as a volume segmentor.

    An :class:`EncoderDecoder3D` whose backbone is the Models Genesis U-Net
    (encoder and decoder; parameters ``backbone.down_tr64...`` ..
    ``backbone.up_tr64...``) and whose decode head is its output 1x1x1
    convolution (``decode_head.conv_seg``, the ``out_tr.final_conv`` of
    Models Genesis) with the losses; whole-volume or sliding-window
    inference as in :class:`EncoderDecoder3D`. D, H and W of the network
    input must be multiples of 8.

    ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads, after the
    default initialization, either a Models Genesis checkpoint
    (``Genesis_Chest_CT.pt``; converted on the fly by
    :func:`~svd_mm.models.utils.baseline_importers.convert_genesis`, which
    permutes the kernels from Models Genesis' (x, y, z) arrays to svd_mm's
    (D, H, W); the key ``source_axes`` of ``init_cfg`` is passed to it) or a
    checkpoint of this model (e.g. written by
    ``tools/model_converters/convert_baseline.py --type genesis``). Every
    tensor must fit, except the output convolution: when ``out_channels``
    differs from the checkpoint's (1 in Models Genesis), it keeps its
    initialization.

    Models Genesis normalises with batch statistics also at test time
    (its ``ContBatchNorm3d``); here the norm layers are ``norm_cfg``
    (``BN3d``: running statistics at test time, the checkpoint's ones to
    start with).

    Args:
        num_classes (int): Number of classes, background included.
        out_channels (int, optional): Output channels: ``num_classes``, or 1
            for binary segmentation with a sigmoid (as Models Genesis; use a
            loss with ``use_sigmoid=True``). Defaults to None
            (``num_classes``).
        threshold (float, optional): Sigmoid threshold for
            ``out_channels == 1``. Defaults to None (0.3, as mmseg).
        in_channels (int): Input channels C. Defaults to 1.
        base_channels (int): Channels of the first convolution; the levels
            have 2, 4, 8 and 16 times as many. Defaults to 32.
        norm_cfg (dict): Config of the norm layers.
            Defaults to ``dict(type='BN3d')``.
        act_cfg (dict): Config of the activations (``'ReLU'``, ``'PReLU'``
            or ``'ELU'`` in Models Genesis).
            Defaults to ``dict(type='ReLU', inplace=True)``.
        dropout_ratio (float): Dropout before the output convolution.
            Defaults to 0.
        loss_decode (dict | Sequence[dict]): Losses of the decode head.
            Defaults to ``dict(type='CrossEntropyLoss', use_sigmoid=False,
            loss_weight=1.0)``.
        ignore_index (int): Label ignored by the losses. Defaults to 255.
        align_corners (bool): ``align_corners`` of trilinear resizing.
            Defaults to False.
        train_cfg (dict, optional): Training config. Defaults to None.
        test_cfg (dict, optional): Testing config, see
            :class:`EncoderDecoder3D`. Defaults to None.
        data_preprocessor (dict, optional): Config of the data
            preprocessor, e.g. ``dict(type='SegVolumeDataPreprocessor')``.
            Defaults to None.
        init_cfg (dict, optional): Initialization config, see above.
            Defaults to None.

    Example:
        >>> import torch
        >>> from svd_mm.models.segmentors import UNet3DGenesis
        >>> model = UNet3DGenesis(num_classes=2, base_channels=4).eval()
        >>> logits = model(torch.rand(1, 1, 8, 16, 24), mode='tensor')
        >>> tuple(logits.shape)
        (1, 2, 8, 16, 24)
    """

    def __init__(self,
                 num_classes: int,
                 out_channels: Optional[int] = None,
                 threshold: Optional[float] = None,
                 in_channels: int = 1,
                 base_channels: int = 32,
                 norm_cfg: dict = dict(type='BN3d'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 dropout_ratio: float = 0.,
                 loss_decode: Union[dict, Sequence[dict]] = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self._check_test_cfg(test_cfg)
        # the parts are built here, not from configs: skip the constructor
        # of EncoderDecoder
        BaseSegmentor.__init__(
            self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = GenesisUNet3DBackbone(
            in_channels=in_channels,
            base_channels=base_channels,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.decode_head = GenesisOutputHead(
            in_channels=self.backbone.out_channels,
            channels=self.backbone.out_channels,
            num_classes=num_classes,
            out_channels=out_channels,
            threshold=threshold,
            dropout_ratio=dropout_ratio,
            loss_decode=loss_decode,
            ignore_index=ignore_index,
            align_corners=align_corners,
            init_cfg=None)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def init_weights(self) -> None:
        """Default initialization, then the checkpoint of a ``Pretrained``
        ``init_cfg`` (see the class docstring)."""
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict)
                and init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        self.init_cfg = None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        self.load_genesis_weights(
            init_cfg['checkpoint'],
            source_axes=init_cfg.get('source_axes', 'xyz'))

    def load_genesis_weights(self,
                             checkpoint: str,
                             source_axes: str = 'xyz') -> dict:
        """Load a Models Genesis checkpoint or one of this model.

        Args:
            checkpoint (str): Path or URL of the checkpoint.
            source_axes (str): Kernel axes of a Models Genesis checkpoint,
                see :func:`convert_genesis`. Defaults to 'xyz'.

        Returns:
            dict: ``loaded`` (number of tensors), ``dropped`` (keys of the
            checkpoint left out: the output convolution of another number
            of channels) and ``adapted`` (keys whose input channels were
            adapted).

        Raises:
            KeyError: If a tensor of the model is not in the checkpoint, or
                the checkpoint has a tensor the model lacks.
            ValueError: If a tensor has another shape than the model's.
        """
        state_dict = read_state_dict(checkpoint, logger='silent')
        if not any(k.startswith('backbone.') for k in state_dict):
            state_dict, _ = convert_genesis(state_dict, source_axes)
        model_state = {
            k: v
            for k, v in self.state_dict().items()
            if k.startswith(('backbone.', 'decode_head.'))
        }
        name = type(self).__name__
        adapted, dropped = [], []
        first = 'backbone.down_tr64.ops.0.conv1.weight'
        if (first in state_dict and
                state_dict[first].shape[1] != model_state[first].shape[1]):
            state_dict[first] = adapt_first_conv_weight(
                state_dict[first], self.backbone.in_channels, first)
            adapted.append(first)
        for key in ('decode_head.conv_seg.weight',
                    'decode_head.conv_seg.bias'):
            if (key in state_dict
                    and state_dict[key].shape != model_state[key].shape):
                print_log(
                    f'{name}: {key} of {checkpoint} has the shape '
                    f'{tuple(state_dict.pop(key).shape)}, the model '
                    f'{tuple(model_state[key].shape)} (out_channels='
                    f'{self.out_channels}): it keeps its initialization',
                    logger='current',
                    level=logging.WARNING)
                dropped.append(key)
        missing = [
            k for k in model_state if k not in state_dict and k not in dropped
        ]
        unexpected = [k for k in state_dict if k not in model_state]
        if missing or unexpected:
            raise KeyError(
                f'checkpoint {checkpoint!r} does not fit {name}: missing '
                f'{len(missing)} tensor(s) {missing[:5]}, unexpected '
                f'{len(unexpected)} tensor(s) {unexpected[:5]}')
        mismatched = [
            f'{k}: checkpoint {tuple(v.shape)} vs model '
            f'{tuple(model_state[k].shape)}' for k, v in state_dict.items()
            if v.shape != model_state[k].shape
        ]
        if mismatched:
            raise ValueError(
                f'checkpoint {checkpoint!r} does not fit {name} (base_'
                f'channels, in_channels or act_cfg?): ' +
                '; '.join(mismatched[:5]))
        self.load_state_dict(state_dict, strict=False)
        print_log(
            f'{name}: loaded {len(state_dict)}/{len(model_state)} tensors '
            f'from {checkpoint}',
            logger='current')
        return dict(loaded=len(state_dict), dropped=dropped, adapted=adapted)
