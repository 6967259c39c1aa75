"""Inference on a user's volume (what ``tools/infer.py`` calls): the
inferencer picked by the config's ``default_scope``, see
:mod:`svd_mm.apis.inferencers`."""
import time
from typing import Optional, Sequence, Union

import torch.nn as nn
from mmengine.config import Config

from svd_mm.utils.medical_io import Volume

from .inferencers import VolumeDetInferencer, VolumeSegInferencer
from .launch import load_config

__all__ = ['inference_volume']


def inference_volume(model_or_config: Union[nn.Module, str, Config],
                     checkpoint: Optional[str] = None,
                     input_path: Union[str, Volume, None] = None,
                     out_dir: Optional[str] = None,
                     device: Optional[str] = None,
                     overlay: bool = False,
                     gt_path: Optional[str] = None,
                     slices: Optional[Sequence[int]] = None,
                     series_uid: Optional[str] = None,
                     batch_size: int = 4,
                     score_thr: float = 0.5,
                     window=None,
                     max_pictures: int = 6,
                     overlap: float = 0.5,
                     cfg_options: Optional[dict] = None) -> dict:
    """Segment or detect on one volume and write the results.

    Args:
        model_or_config (nn.Module | str | Config): A model from
            :func:`~svd_mm.apis.init_model`, or a config (then
            ``checkpoint`` is loaded); its ``default_scope`` (mmseg /
            mmdet) picks the inferencer.
        checkpoint (str, optional): Checkpoint of a config.
        input_path (str | Volume): Volume file, DICOM file or series
            folder, or a :class:`~svd_mm.utils.medical_io.Volume`.
        out_dir (str, optional): Folder for the files; None writes nothing.
        device (str, optional): Device of a model built here.
        overlay (bool): Write PNG pictures (needs ``out_dir``).
        gt_path (str, optional): True label mask on the input's grid, for
            the pictures and the Dice (segmentation only).
        slices (Sequence[int], optional): Key slices to detect on
            (default: every slice).
        series_uid (str, optional): Series of a DICOM folder with several.
        batch_size (int): Slice stacks per forward pass (detection).
        score_thr (float): Smallest score of the boxes drawn.
        window (tuple | str, optional): Display window of the pictures.
        max_pictures (int): Most slice pictures of a detection.
        overlap (float): Overlap of the sliding windows of a crop-trained
            segmentation model, in [0, 1).
        cfg_options (dict, optional): Config overrides, with a config.

    Returns:
        dict: The inferencer's prediction for the volume (``task``,
        ``volume``, ``classes``, ``files`` and ``mask``, ``voxels``,
        ``volume_ml``, ``sliding_window``, ``dice`` for 'seg' or
        ``detections``, ``key_slices`` for 'det') and ``seconds`` taken.
    """
    if input_path is None:
        raise ValueError('inference_volume needs input_path')
    if isinstance(model_or_config, nn.Module):
        model = model_or_config
        if not hasattr(model, 'cfg'):
            raise ValueError('The model has no cfg: build it with init_model '
                             'or set model.cfg to its config')
        scope = model.cfg.get('default_scope')
    else:
        model = load_config(model_or_config, cfg_options)
        scope = model.get('default_scope')
    if scope == 'mmseg':
        inferencer = VolumeSegInferencer(
            model, checkpoint, device, overlap=overlap)
        kwargs = dict(gt=gt_path)
    elif scope == 'mmdet':
        if gt_path is not None:
            raise ValueError('gt_path (a label mask) is for segmentation; '
                             'detection writes boxes only')
        inferencer = VolumeDetInferencer(model, checkpoint, device)
        kwargs = dict(
            slices=slices, pred_score_thr=score_thr, max_pictures=max_pictures)
    else:
        raise ValueError(
            'inference_volume runs mmseg segmentors and mmdet detectors, '
            f'but the config has default_scope={scope!r}')
    t0 = time.time()
    result = inferencer(
        input_path,
        batch_size=batch_size,
        out_dir=out_dir or '',
        series_uid=series_uid,
        overlay=overlay,
        window=window,
        **kwargs)['predictions'][0]
    result['seconds'] = round(time.time() - t0, 3)
    return result
