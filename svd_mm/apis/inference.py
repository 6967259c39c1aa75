"""Inference on a user's volume: the main job of a trained svd_mm model.

:func:`inference_volume` reads a CT / MR volume in any supported format
(NIfTI, NRRD, MetaImage, DICOM series; :mod:`svd_mm.utils.medical_io`),
runs the **config's own test pipeline** on it and the model, and writes

- for an mmseg config (e.g. ``EncoderDecoder3D``): the label mask as NIfTI
  on the input's grid (same shape and affine, whatever the input format;
  a prediction made on a resampled grid is mapped back by nearest voxel),
- for an mmdet config (slice-stack detectors, DeepLesion style): the boxes
  of every key slice (or of the given ones) as JSON and CSV, in pixels and
  in RAS millimetres,
- with ``overlay=True``: PNG pictures (:mod:`svd_mm.visualization.overlay`)
- and a ``<name>_result.json`` summary.

How the config's test pipeline is applied to an in-memory volume: its first
transform (the file loader) is replaced by
:class:`~svd_mm.datasets.transforms.LoadVolumeArray` with the loader's
settings, and annotation loaders (``LoadAnnotations``) are dropped; every
other transform runs as configured. Replaced loaders:

- ``LoadVolumeNifti``: the whole volume, with the loader's ``preprocess``
  (HU window, slice spacing), else the test dataset's ``preprocess`` (raw
  LiTS files), else none. A config whose test data were prepared offline
  (e.g. the LiTS configs read ``tools/dataset_converters/prepare_lits.py``'s
  output) must get the preparation's settings, e.g.
  ``--cfg-options test_dataloader.dataset.preprocess.window="(-200,250)"
  test_dataloader.dataset.preprocess.spacing_z=1.0``; a warning says so;
- ``LoadNoduleNpz`` (LIDC-IDRI release volumes: CT windowed to
  [-1024, 400] HU as uint8): the whole volume, windowed the same way (no
  resampling: give a 1 mm volume);
- ``LoadDeepLesionSlices``: one slice stack per key slice, with the
  loader's ``num_slices``, ``slice_spacing``, ``hu_window`` and
  ``out_range``;
- ``LoadVolumeArray``: used as it is.

Coordinates written for boxes: ``bbox_px`` is (x1, y1, x2, y2) in the key
slice's pixels with pixel ``i`` spanning [i, i + 1) (mmdet's convention);
the RAS millimetres of a box point (u, v) on slice ``k`` are
``affine @ (u - 0.5, v - 0.5, k, 1)`` (voxel centres sit at integer
indices), see :mod:`svd_mm.utils.medical_io` for the RAS convention.
"""
import copy
import csv
import importlib
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from svd_mm.utils.medical_io import (Volume, read_volume, volume_stem,
                                     write_mask)
from svd_mm.utils.volume_io import (DEEPLESION_HU_WINDOW, LIDC_RELEASE_WINDOW,
                                    LITS_HU_WINDOW, make_geometry,
                                    resample_to_geometry)

from .launch import load_config, register_toolbox

__all__ = ['init_model', 'inference_volume', 'build_volume_pipeline']

ConfigType = Union[str, Config]


def _default_device() -> str:
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def init_model(config: ConfigType,
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from an mmseg / mmdet (/ mmpretrain) config and load a
    checkpoint.

    The config's ``default_scope`` names the toolbox; its modules and
    svd_mm's are registered and the model is built in that scope. The
    checkpoint is loaded strictly (every key, every shape), through
    mmengine's ``CheckpointLoader`` with ``weights_only=True``. The
    backbone's ``init_cfg`` (e.g. a pre-trained checkpoint used for
    training) is not applied: the checkpoint holds all weights.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file. Defaults to None
            (random weights; only useful for tests).
        device (str, optional): ``'cpu'``, ``'cuda:0'``... Defaults to None
            (``cuda:0`` if available, else the CPU).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
            Defaults to None.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (the config) and
        ``dataset_meta`` (from the checkpoint's meta, if saved there).

    Raises:
        FileNotFoundError: If the config or the checkpoint is missing.
        RuntimeError: If the checkpoint does not fit the model (the message
            names the checkpoint, the config and the keys / shapes).
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    else:
        cfg = load_config(str(config), cfg_options)
    scope = register_toolbox(cfg)
    registry = importlib.import_module(f'{scope}.registry')
    model_cfg = copy.deepcopy(cfg.model)
    if scope == 'mmseg':
        model_cfg.pop('pretrained', None)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(model_cfg)
    model.cfg = cfg
    dataset_meta = None
    if checkpoint is not None:
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'Checkpoint {checkpoint} does not exist')
        from mmengine.runner import load_checkpoint
        try:
            ckpt = load_checkpoint(
                model, checkpoint, map_location='cpu', strict=True,
                logger='silent')
        except RuntimeError as e:
            raise RuntimeError(
                f'Checkpoint {checkpoint} does not fit the model of config '
                f'{cfg.filename}: {e}') from e
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        dataset_meta = meta.get('dataset_meta') if isinstance(meta,
                                                              dict) else None
    model.dataset_meta = dataset_meta or {}
    model.to(device or _default_device())
    model.eval()
    return model


def _task_of(model: nn.Module) -> str:
    try:
        from mmseg.models.segmentors import BaseSegmentor
        if isinstance(model, BaseSegmentor):
            return 'seg'
    except ImportError:  # mmseg is optional
        pass
    try:
        from mmdet.models.detectors import BaseDetector
        if isinstance(model, BaseDetector):
            return 'det'
    except ImportError:  # mmdet is optional
        pass
    raise ValueError(
        f'inference_volume runs mmseg segmentors and mmdet detectors, but '
        f'the config builds a {type(model).__name__}')


def _test_dataset_cfg(cfg: Config) -> dict:
    dataset = cfg.get('test_dataloader', {}).get('dataset', {}) or {}
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']  # wrappers (RepeatDataset, ...)
    return dataset


def build_volume_pipeline(cfg: Config):
    """The config's test pipeline, started from an in-memory volume.

    Args:
        cfg (Config): The config (``test_dataloader.dataset.pipeline``,
            else ``test_pipeline``).

    Returns:
        tuple: ``(loader, rest, info)``: the
        :class:`~svd_mm.datasets.transforms.LoadVolumeArray` that replaces
        the file loader, a ``Compose`` of the remaining transforms (built
        in the config's scope), and ``info`` (``loader``: the replaced
        type, ``mode``: ``'volume'`` or ``'stack'``, ``preprocess``,
        ``hu_window``: the HU window the model sees, or None).
    """
    # registers LoadVolumeArray in mmengine's root TRANSFORMS
    from svd_mm.datasets.transforms.load_volume_array import LoadVolumeArray
    dataset = _test_dataset_cfg(cfg)
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise KeyError(f'Config {cfg.filename} has no test pipeline '
                       '(test_dataloader.dataset.pipeline or test_pipeline)')
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    first = pipeline[0]
    kind = first.get('type')
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', kind)
    if kind == 'LoadVolumeNifti':
        preprocess = first.get('preprocess') or dataset.get('preprocess')
        if preprocess is None:
            print_log(
                f'The test pipeline of {cfg.filename} loads NIfTI volumes '
                'without preprocessing: the volume is fed as it is. If the '
                'test data were prepared offline (HU window, slice spacing), '
                'pass the same settings, e.g. --cfg-options '
                'test_dataloader.dataset.preprocess.window="(-200,250)" '
                'test_dataloader.dataset.preprocess.spacing_z=1.0',
                logger='current',
                level=30)
        loader = LoadVolumeArray(
            preprocess=None if preprocess is None else dict(preprocess),
            to_float32=first.get('to_float32', False))
        mode = 'volume'
    elif kind == 'LoadNoduleNpz':
        loader = LoadVolumeArray(
            preprocess=dict(window=LIDC_RELEASE_WINDOW, spacing_z=None),
            to_float32=first.get('to_float32', False))
        mode = 'volume'
    elif kind == 'LoadDeepLesionSlices':
        loader = LoadVolumeArray(
            num_slices=first.get('num_slices', 9),
            slice_spacing=first.get('slice_spacing', 2.5),
            hu_window=first.get('hu_window', DEEPLESION_HU_WINDOW),
            out_range=first.get('out_range', (0., 255.)))
        mode = 'stack'
    elif kind == 'LoadVolumeArray':
        first.pop('type')
        loader = LoadVolumeArray(**first)
        mode = 'volume' if loader.num_slices is None else 'stack'
    else:
        raise ValueError(
            f'The test pipeline of {cfg.filename} starts with {kind!r}; '
            'inference on a volume replaces LoadVolumeNifti, LoadNoduleNpz, '
            'LoadDeepLesionSlices or LoadVolumeArray by an in-memory loader')
    # the HU window the model sees: a stack's, else the preprocessing's
    if mode == 'stack':
        hu_window = loader.hu_window
    elif loader.preprocess is not None:
        hu_window = tuple(loader.preprocess.get('window', LITS_HU_WINDOW))
    else:
        hu_window = None
    info = dict(
        loader=kind,
        preprocess=loader.preprocess,
        hu_window=hu_window,
        mode=mode)
    rest = [t for t in pipeline[1:] if t.get('type') != 'LoadAnnotations']
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        rest = Compose(rest)
    return loader, rest, info


def _class_names(model: nn.Module, cfg: Config, num: int) -> List[str]:
    classes = (model.dataset_meta or {}).get('classes')
    if not classes:
        metainfo = _test_dataset_cfg(cfg).get('metainfo') or {}
        classes = metainfo.get('classes')
    if not classes:
        try:
            registry = importlib.import_module(
                f"{cfg.get('default_scope')}.registry")
            dataset_type = registry.DATASETS.get(
                _test_dataset_cfg(cfg)['type'])
            classes = dataset_type.METAINFO.get('classes')
        except Exception:  # no dataset type or no METAINFO
            classes = None
    classes = list(classes or [])
    return classes + [f'class {i}' for i in range(len(classes), num)]


def _read_gt(gt_path: str, volume: Volume) -> np.ndarray:
    gt = read_volume(gt_path)
    if gt.shape != volume.shape or not np.allclose(
            gt.affine, volume.affine, atol=1e-3):
        raise ValueError(
            f'Ground truth {gt_path} (shape {gt.shape}) is not on the grid '
            f'of {volume.source} (shape {volume.shape}): their shapes or '
            'affines differ')
    labels = np.rint(gt.array)
    if labels.min() < 0 or labels.max() > 255:
        raise ValueError(f'{gt_path} holds values outside [0, 255]; is it '
                         'a label map?')
    return labels.astype(np.uint8)


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = pred > 0, gt > 0
    denom = int(pred.sum()) + int(gt.sum())
    return 1. if denom == 0 else 2. * int((pred & gt).sum()) / denom


def _unit(volume: Volume) -> str:
    """'HU' for CT (a DICOM CT, or values down to air), else
    'intensity'."""
    modality = volume.meta.get('modality')
    if modality:
        return 'HU' if modality == 'CT' else 'intensity'
    return 'HU' if float(volume.array.min()) <= -500 else 'intensity'


def _to_center_width(hu_window) -> Optional[tuple]:
    if hu_window is None:
        return None
    low, high = (float(v) for v in hu_window)
    return ((low + high) / 2, high - low)


@torch.no_grad()
def _segment(model, volume, loader, rest, stem):
    results = loader(
        dict(volume=volume, img_path=volume.source, case_id=stem))
    grid = make_geometry(results['affine'], results['img_shape'])
    packed = rest(results)
    if packed is None:
        raise ValueError('The test pipeline dropped the volume (a transform '
                         'returned None)')
    output = model.test_step(pseudo_collate([packed]))[0]
    pred = output.pred_sem_seg.data
    pred = pred.detach().cpu().numpy()
    pred = pred[0] if pred.ndim == 4 else pred
    if tuple(pred.shape) != tuple(grid['shape']):
        raise ValueError(
            f'The model predicted a (D, H, W) {tuple(pred.shape)} mask for '
            f"the {tuple(grid['shape'])} volume of the loader; the test "
            'pipeline must keep the volume whole (no crops) for inference')
    if np.allclose(np.asarray(grid['affine']), volume.affine,
                   atol=1e-6) and tuple(grid['shape']) == volume.shape:
        mask = pred
    else:  # e.g. resampled to 1 mm slices: back onto the input grid
        mask = resample_to_geometry(
            Volume(pred, grid['affine']), volume.geometry, order=0).array
    return mask.astype(np.uint8), grid


def _box_record(volume: Volume, k: int, box, score: float, label: int,
                class_names: Sequence[str]) -> dict:
    x1, y1, x2, y2 = (float(v) for v in box)
    corners = volume.dhw_to_ras(
        np.array([[k, y1 - .5, x1 - .5], [k, y2 - .5, x2 - .5]]))
    centre = volume.dhw_to_ras(
        np.array([k, (y1 + y2) / 2 - .5, (x1 + x2) / 2 - .5]))
    _, sy, sx = volume.spacing
    return dict(
        slice_index=int(k),
        label=int(label),
        class_name=class_names[label]
        if 0 <= label < len(class_names) else f'class {label}',
        score=float(score),
        bbox_px=[x1, y1, x2, y2],
        center_ras_mm=[float(v) for v in centre],
        size_mm=[(x2 - x1) * sx, (y2 - y1) * sy],
        corners_ras_mm=[[float(v) for v in c] for c in corners])


@torch.no_grad()
def _detect(model, volume, loader, rest, slices, batch_size, class_names):
    detections = []
    for start in range(0, len(slices), batch_size):
        batch = []
        for k in slices[start:start + batch_size]:
            results = loader(
                dict(
                    volume=volume,
                    key_slice=int(k),
                    img_path=volume.source,
                    img_id=int(k)))
            batch.append(rest(results))
        outputs = model.test_step(pseudo_collate(batch))
        for k, output in zip(slices[start:start + batch_size], outputs):
            instances = output.pred_instances
            for box, score, label in zip(
                    instances.bboxes.cpu().numpy(),
                    instances.scores.cpu().numpy(),
                    instances.labels.cpu().numpy()):
                detections.append(
                    _box_record(volume, int(k), box, float(score),
                                int(label), class_names))
    return detections


def _num_det_classes(model: nn.Module) -> int:
    """Classes of a two-stage (``roi_head.bbox_head``) or single-stage
    (``bbox_head``) mmdet detector."""
    for head in (getattr(getattr(model, 'roi_head', None), 'bbox_head',
                         None), getattr(model, 'bbox_head', None)):
        if head is not None and hasattr(head, 'num_classes'):
            return int(head.num_classes)
    return 1


CSV_COLUMNS = ('slice_index', 'label', 'class_name', 'score', 'x1_px',
               'y1_px', 'x2_px', 'y2_px', 'center_x_ras_mm',
               'center_y_ras_mm', 'center_z_ras_mm', 'width_mm', 'height_mm')


def _write_boxes_csv(detections: List[dict], path: str) -> str:
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for d in detections:
            writer.writerow([
                d['slice_index'], d['label'], d['class_name'],
                f"{d['score']:.6f}", *[f'{v:.2f}' for v in d['bbox_px']],
                *[f'{v:.3f}' for v in d['center_ras_mm']],
                *[f'{v:.3f}' for v in d['size_mm']]
            ])
    return path


def inference_volume(model_or_config: Union[nn.Module, ConfigType],
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
                     cfg_options: Optional[dict] = None) -> dict:
    """Segment or detect on one volume and write the results.

    Args:
        model_or_config (nn.Module | str | Config): A model from
            :func:`init_model`, or a config (then ``checkpoint`` is loaded).
        checkpoint (str, optional): Checkpoint, with a config.
            Defaults to None.
        input_path (str | Volume): NIfTI / NRRD / MetaImage file, DICOM
            file or series folder, or a :class:`~svd_mm.utils.medical_io.
            Volume` already read.
        out_dir (str, optional): Folder for the files; None writes nothing.
            Defaults to None.
        device (str, optional): Device of a model built here. Defaults to
            None (``cuda:0`` if available, else the CPU).
        overlay (bool): Write PNG pictures (needs ``out_dir``).
            Defaults to False.
        gt_path (str, optional): True label mask on the input's grid (any
            format; segmentation only): drawn dashed in the pictures, and
            the Dice of the foregrounds (labels > 0) of prediction and
            truth reported. Defaults to None.
        slices (Sequence[int], optional): Key slices (indices along D) to
            detect on. Defaults to None (every slice).
        series_uid (str, optional): Series to read from a DICOM folder with
            several. Defaults to None.
        batch_size (int): Slice stacks per forward pass (detection).
            Defaults to 4.
        score_thr (float): Boxes drawn in the pictures score at least this
            (the JSON / CSV hold every box the model returns).
            Defaults to 0.5.
        window (tuple | str, optional): Display window of the pictures,
            (centre, width) or a preset name. Defaults to None: the HU
            window the model sees, else percentiles.
        max_pictures (int): Most slice pictures of a detection.
            Defaults to 6.
        cfg_options (dict, optional): Config overrides, with a config.
            Defaults to None.

    Returns:
        dict: ``task`` ('seg' / 'det'), ``volume`` (the input Volume),
        ``classes``, ``files`` (name -> path written) and, for 'seg',
        ``mask`` ((D, H, W) uint8 on the input's grid), ``voxels`` and
        ``volume_ml`` per class and ``dice`` (with ``gt_path``); for 'det',
        ``detections`` (list of dicts, see the module docstring) and
        ``key_slices``. The same, without arrays, is written to
        ``<out_dir>/<name>_result.json``.
    """
    if input_path is None:
        raise ValueError('inference_volume needs input_path')
    if overlay and out_dir is None:
        raise ValueError('overlay=True needs out_dir for the pictures')
    if isinstance(model_or_config, nn.Module):
        model = model_or_config
        if not hasattr(model, 'cfg'):
            raise ValueError('The model has no cfg: build it with init_model '
                             'or set model.cfg to its config')
    else:
        model = init_model(model_or_config, checkpoint, device, cfg_options)
    cfg = model.cfg
    task = _task_of(model)
    loader, rest, info = build_volume_pipeline(cfg)
    if task == 'det' and gt_path is not None:
        raise ValueError('gt_path (a label mask) is for segmentation; '
                         'detection writes boxes only')
    if (task == 'det') != (info['mode'] == 'stack'):
        raise ValueError(
            f'A {"detector" if task == "det" else "segmentor"} with a test '
            f"pipeline loading {info['loader']} is not supported: detection "
            'runs on slice stacks (LoadDeepLesionSlices), segmentation on '
            'whole volumes')
    t0 = time.time()
    volume = input_path if isinstance(input_path, Volume) else read_volume(
        str(input_path), series_uid=series_uid)
    stem = volume_stem(volume.source or 'volume')
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    gt = None if gt_path is None else _read_gt(gt_path, volume)
    display_window = window if window is not None else _to_center_width(
        info['hu_window'])
    result = dict(
        task=task,
        input=volume.source,
        format=volume.format,
        shape_dhw=list(volume.shape),
        spacing_dhw_mm=list(volume.spacing),
        affine_ras=volume.affine.tolist(),
        config=cfg.filename,
        checkpoint=checkpoint,
        test_loader=info['loader'],
        preprocess=info['preprocess'],
        files={})

    if task == 'seg':
        mask, grid = _segment(model, volume, loader, rest, stem)
        num_classes = max(
            int(getattr(model, 'num_classes', 2) or 2), int(mask.max()) + 1)
        classes = _class_names(model, cfg, num_classes)
        voxel_ml = abs(float(np.linalg.det(volume.affine[:3, :3]))) / 1000.
        counts = np.bincount(mask.ravel(), minlength=num_classes)
        result.update(
            classes=classes,
            model_grid_shape_dhw=list(grid['shape']),
            model_grid_spacing_dhw_mm=list(grid['spacing']),
            voxels={classes[i]: int(counts[i])
                    for i in range(1, len(counts))},
            volume_ml={classes[i]: float(counts[i] * voxel_ml)
                       for i in range(1, len(counts))})
        if gt is not None:
            result['dice'] = _dice(mask, gt)
            result['gt'] = gt_path
        if out_dir is not None:
            result['files']['mask'] = write_mask(
                mask, volume, osp.join(out_dir, f'{stem}_seg.nii.gz'))
        if overlay:
            from svd_mm.visualization.overlay import plot_volume_overlay
            dice = f', Dice {result["dice"]:.3f}' if gt is not None else ''
            result['files']['overlay'] = plot_volume_overlay(
                volume.array,
                volume.affine,
                osp.join(out_dir, f'{stem}_overlay.png'),
                pred=mask,
                gt=gt,
                window=display_window,
                class_names=classes,
                title=f'{osp.basename(volume.source)}: '
                f'{osp.basename(cfg.filename or "model")}{dice}',
                unit=_unit(volume))
        arrays = dict(mask=mask)
    else:
        num = volume.shape[0]
        key_slices = list(range(num)) if slices is None else [
            int(k) for k in slices
        ]
        bad = [k for k in key_slices if not 0 <= k < num]
        if bad:
            raise ValueError(f'slices {bad} are outside the {num} slices of '
                             f'{volume.source}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        classes = _class_names(model, cfg, _num_det_classes(model))
        detections = _detect(model, volume, loader, rest, key_slices,
                             batch_size, classes)
        result.update(
            classes=classes,
            key_slices=key_slices,
            num_slices_stack=loader.num_slices,
            slice_spacing_mm=loader.slice_spacing,
            detections=detections)
        if out_dir is not None:
            result['files']['boxes_csv'] = _write_boxes_csv(
                detections, osp.join(out_dir, f'{stem}_boxes.csv'))
            boxes_json = osp.join(out_dir, f'{stem}_boxes.json')
            with open(boxes_json, 'w') as f:
                json.dump(
                    {k: result[k] for k in (
                        'input', 'shape_dhw', 'spacing_dhw_mm', 'affine_ras',
                        'classes', 'key_slices', 'num_slices_stack',
                        'slice_spacing_mm', 'detections')},
                    f,
                    indent=1)
            result['files']['boxes_json'] = boxes_json
        if overlay:
            result['files']['pictures'] = _box_pictures(
                volume, detections, key_slices, out_dir, stem, score_thr,
                display_window, classes, max_pictures)
        arrays = {}
    result['seconds'] = round(time.time() - t0, 3)
    if out_dir is not None:
        summary = osp.join(out_dir, f'{stem}_result.json')
        result['files']['result'] = summary
        with open(summary, 'w') as f:
            json.dump({k: v for k, v in result.items() if k != 'detections'},
                      f, indent=1)
    result.update(arrays, volume=volume)
    return result


def _box_pictures(volume, detections, key_slices, out_dir, stem, score_thr,
                  window, classes, max_pictures) -> List[str]:
    from svd_mm.visualization.overlay import plot_slice_boxes
    best: Dict[int, float] = {}
    for d in detections:
        if d['score'] >= score_thr:
            best[d['slice_index']] = max(best.get(d['slice_index'], 0),
                                         d['score'])
    chosen = sorted(best, key=lambda k: -best[k])[:max_pictures]
    if not chosen:  # show that nothing was found, on the middle key slice
        chosen = [key_slices[len(key_slices) // 2]]
    paths = []
    for k in sorted(chosen):
        dets = [d for d in detections if d['slice_index'] == k]
        paths.append(
            plot_slice_boxes(
                volume.array[k],
                volume.affine,
                osp.join(out_dir, f'{stem}_slice{k:03d}.png'),
                boxes=np.array([d['bbox_px'] for d in dets]).reshape(-1, 4),
                scores=np.array([d['score'] for d in dets]),
                labels=np.array([d['label'] for d in dets], dtype=np.int64),
                class_names=classes,
                score_thr=score_thr,
                window=window,
                title=f'{osp.basename(volume.source)}: key slice {k} '
                f'of {volume.shape[0]}',
                unit=_unit(volume)))
    return paths
