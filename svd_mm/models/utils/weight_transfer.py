"""Transfer pre-trained 3D weights into a backbone.

SVD-Net pre-trains a 3D CNN on Variable-Dimension-Transformed natural images
(mmpretrain saves ``{'state_dict': {'backbone.*': ..., 'head.*': ...}}``)
and fine-tunes it on 3D medical volumes, often with other strides (e.g.
``slice_strides``) and sometimes with another number of input channels.
Strides do not change any weight shape, so the backbone's tensors are copied
one to one; only the first convolution is adapted when the number of input
channels differs (see :func:`adapt_first_conv_weight`). Any other shape
mismatch is refused rather than silently skipped.

Checkpoints are read through mmengine's
:class:`~mmengine.runner.CheckpointLoader`, i.e. with
``torch.load(weights_only=True)`` and the allow-list of
:mod:`svd_mm.utils.checkpoint_safety`.
"""
import logging
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner import CheckpointLoader

__all__ = [
    'read_state_dict', 'select_prefix', 'adapt_first_conv_weight',
    'load_backbone_weights'
]

LoggerType = Union[MMLogger, logging.Logger, str, None]


def _examples(keys: List[str], num: int = 5) -> str:
    """A few keys, for error messages."""
    keys = list(keys)
    text = ', '.join(repr(k) for k in keys[:num])
    if len(keys) > num:
        text += f', ... ({len(keys)} keys)'
    return text or '(none)'


def read_state_dict(checkpoint: str,
                    map_location: Optional[str] = 'cpu',
                    logger: LoggerType = 'current') -> 'OrderedDict':
    """Read the state dict of a checkpoint file, without a ``module.``.

    The file is loaded with :meth:`mmengine.runner.CheckpointLoader.
    load_checkpoint`. The state dict is ``checkpoint['state_dict']``
    (mmengine, mmpretrain, mmdet, mmseg), else ``checkpoint['model']``, else
    the checkpoint itself. A leading ``module.`` (left by
    ``DistributedDataParallel``) is stripped from every key.

    Args:
        checkpoint (str): Path or URL of the checkpoint.
        map_location (str, optional): Same as :func:`torch.load`.
            Defaults to 'cpu'.
        logger (MMLogger or str, optional): Where to log. Defaults to
            'current'.

    Returns:
        OrderedDict: Tensor name to tensor.

    Raises:
        FileNotFoundError: If a local ``checkpoint`` does not exist.
        ValueError: If the checkpoint holds no dict of tensors.
    """
    ckpt = CheckpointLoader.load_checkpoint(
        checkpoint, map_location=map_location, logger=logger)
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint!r} holds a '
                         f'{type(ckpt).__name__}, expected a dict')
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if not isinstance(state_dict, dict):
        raise ValueError(f'the state dict of checkpoint {checkpoint!r} is a '
                         f'{type(state_dict).__name__}, expected a dict')
    not_tensors = [
        k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)
    ]
    if not_tensors:
        raise ValueError(
            f'checkpoint {checkpoint!r} has no state dict of tensors: '
            f'{_examples(not_tensors)} are not tensors (top-level keys: '
            f'{_examples(list(ckpt))}); expected the tensors under '
            "'state_dict' or 'model', or at the top level")
    return _strip_module(state_dict)


def _strip_module(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """Drop the leading ``module.`` that ``DistributedDataParallel`` leaves
    on every key."""
    return OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())


def select_prefix(state_dict: Dict[str, torch.Tensor],
                  prefix: str,
                  filename: str = '<state_dict>') -> 'OrderedDict':
    """Keep the keys that start with ``prefix``, with the prefix removed.

    Args:
        state_dict (dict[str, Tensor]): The full state dict.
        prefix (str): E.g. ``'backbone.'``; a missing final dot is added.
        filename (str): The checkpoint, named in the error message.
            Defaults to '<state_dict>'.

    Returns:
        OrderedDict: The selected tensors, e.g. ``conv1.conv.weight`` for
        ``backbone.conv1.conv.weight``.

    Raises:
        ValueError: If no key starts with ``prefix``.
    """
    if not prefix.endswith('.'):
        prefix += '.'
    selected = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                           if k.startswith(prefix))
    if not selected:
        raise ValueError(
            f'no key of checkpoint {filename!r} starts with prefix '
            f'{prefix!r}; its keys are e.g. {_examples(list(state_dict))}')
    return selected


def adapt_first_conv_weight(weight: torch.Tensor,
                            in_channels: int,
                            key: str = 'weight') -> torch.Tensor:
    """Adapt a first-convolution weight to another number of input channels.

    The rule keeps the response to inputs whose channels are all equal:

    - C -> 1 (e.g. a model pre-trained on RGB volumes, fine-tuned on grey
      CT): the weight is summed over its input channels, so a grey volume
      gives the same response as the RGB volume with that grey value in
      every channel;
    - 1 -> C: the weight is repeated C times and divided by C, so a volume
      with the same value in its C channels gives the same response as the
      one-channel volume.

    Args:
        weight (torch.Tensor): Checkpoint weight of shape
            (O, C_ckpt, k_d, k_h, k_w).
        in_channels (int): Number of input channels C of the model.
        key (str): Name of the weight, for the error message.
            Defaults to 'weight'.

    Returns:
        torch.Tensor: Weight of shape (O, in_channels, k_d, k_h, k_w).

    Raises:
        ValueError: If neither C_ckpt nor ``in_channels`` is 1 (and they
            differ).

    Example:
        >>> import torch
        >>> weight = torch.ones(4, 3, 7, 7, 7)
        >>> tuple(adapt_first_conv_weight(weight, 1).shape)
        (4, 1, 7, 7, 7)
        >>> adapt_first_conv_weight(weight, 1)[0, 0, 0, 0, 0].item()
        3.0
    """
    ckpt_channels = weight.size(1)
    if ckpt_channels == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if ckpt_channels == 1:
        repeats = [1, in_channels] + [1] * (weight.dim() - 2)
        return weight.repeat(*repeats) / in_channels
    raise ValueError(
        f'cannot adapt {key} of shape {tuple(weight.shape)} from '
        f'{ckpt_channels} to {in_channels} input channels: only C -> 1 (sum '
        'over the channels) and 1 -> C (repeat and divide by C) are defined')


def _first_conv_key(model_state: Dict[str, torch.Tensor],
                    in_channels: int) -> Optional[str]:
    """The first convolution weight of shape (O, in_channels, ...)."""
    for key, value in model_state.items():
        if (key.endswith('weight') and value.dim() >= 3
                and value.size(1) == in_channels):
            return key
    return None


def load_backbone_weights(module: nn.Module,
                          checkpoint: str,
                          prefix: Optional[str] = None,
                          map_location: Optional[str] = 'cpu',
                          logger: LoggerType = 'current') -> dict:
    """Load pre-trained weights into a backbone.

    Steps:

    1. read the state dict with :func:`read_state_dict` (safe loading,
       ``state_dict`` / ``model`` / raw dict, ``module.`` stripped);
    2. with ``prefix`` (e.g. ``'backbone.'`` for an mmpretrain or mmdet
       checkpoint), keep the keys under it and strip it;
    3. adapt the first convolution if only its number of input channels
       differs (:func:`adapt_first_conv_weight`): this is the first weight,
       in the order of ``module.state_dict()``, of shape
       (O, module.in_channels, ...);
    4. refuse any other shape mismatch;
    5. ``module.load_state_dict(state_dict, strict=False)`` and log the
       missing keys (left as initialized, e.g. a new head) and the unexpected
       ones (e.g. a dropped fc head or the extra blocks of a deeper model).

    Args:
        module (nn.Module): The backbone. Its ``in_channels`` attribute, if
            any, enables step 3.
        checkpoint (str): Path or URL of the checkpoint.
        prefix (str, optional): Prefix of the backbone's keys in the
            checkpoint, e.g. ``'backbone.'``. Defaults to None (the keys
            are the module's own).
        map_location (str, optional): Same as :func:`torch.load`.
            Defaults to 'cpu'.
        logger (MMLogger or str, optional): Where to log. Defaults to
            'current'.

    Returns:
        dict: ``missing`` (keys of the module not in the checkpoint),
        ``unexpected`` (keys of the checkpoint not in the module) and
        ``adapted`` (keys whose input channels were adapted), each a list of
        str.

    Raises:
        FileNotFoundError: If a local ``checkpoint`` does not exist.
        ValueError: If no key has ``prefix``, if no key matches the module,
            or if a tensor's shape differs from the module's (other than
            the adaptable first convolution).
    """
    state_dict = read_state_dict(checkpoint, map_location, logger)
    if prefix:
        state_dict = select_prefix(state_dict, prefix, checkpoint)
    model_state = module.state_dict()
    name = type(module).__name__

    common = [k for k in state_dict if k in model_state]
    if state_dict and not common:
        raise ValueError(
            f'no key of checkpoint {checkpoint!r}'
            f'{f" under prefix {prefix!r}" if prefix else ""} matches '
            f'{name}: the checkpoint has e.g. {_examples(list(state_dict))}, '
            f'the module e.g. {_examples(list(model_state))}; set prefix '
            "(e.g. 'backbone.') if the backbone is part of a larger model")

    adapted = []
    in_channels = getattr(module, 'in_channels', None)
    first_key = _first_conv_key(model_state, in_channels) if isinstance(
        in_channels, int) else None
    if first_key in state_dict:
        ckpt_shape = state_dict[first_key].shape
        model_shape = model_state[first_key].shape
        ckpt_rest = ckpt_shape[:1] + ckpt_shape[2:]
        model_rest = model_shape[:1] + model_shape[2:]
        if ckpt_shape != model_shape and ckpt_rest == model_rest:
            state_dict[first_key] = adapt_first_conv_weight(
                state_dict[first_key], in_channels, first_key)
            adapted.append(first_key)
            rule = ('summed over the input channels' if in_channels == 1 else
                    f'repeated {in_channels} times and divided by '
                    f'{in_channels}')
            print_log(
                f'{name}: adapted {first_key} from {tuple(ckpt_shape)} to '
                f'{tuple(model_shape)} ({rule})',
                logger=logger)

    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(model_state[k].shape)}' for k in common
        if state_dict[k].shape != model_state[k].shape
    ]
    if mismatched:
        raise ValueError(f'checkpoint {checkpoint!r} does not fit {name}: '
                         f'{len(mismatched)} tensor(s) have another shape: ' +
                         '; '.join(mismatched[:5]) +
                         ('; ...' if len(mismatched) > 5 else '') +
                         ' (is it another depth or width?)')

    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    missing, unexpected = list(missing), list(unexpected)
    print_log(
        f'{name}: loaded {len(common)}/{len(model_state)} tensors from '
        f'{checkpoint}' + (f' (prefix {prefix!r})' if prefix else ''),
        logger=logger)
    if missing:
        print_log(
            f'{name}: {len(missing)} key(s) not in the checkpoint keep their '
            f'initialization: {", ".join(missing)}',
            logger=logger,
            level=logging.WARNING)
    if unexpected:
        print_log(
            f'{name}: {len(unexpected)} key(s) of the checkpoint are unused: '
            f'{", ".join(unexpected)}',
            logger=logger,
            level=logging.WARNING)
    return dict(missing=missing, unexpected=unexpected, adapted=adapted)
