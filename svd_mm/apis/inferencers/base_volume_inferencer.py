"""The shared part of the volume inferencers, on mmengine's
:class:`~mmengine.infer.BaseInferencer` as mmseg's ``MMSegInferencer`` and
mmdet's ``DetInferencer``, with volumes in place of images: an input is a
NIfTI / NRRD / MetaImage file, a DICOM file or series folder (one series,
not a list of inputs), or a :class:`~svd_mm.utils.medical_io.Volume`. The
config's own test pipeline runs on it, its file loader replaced by
:class:`~svd_mm.datasets.transforms.LoadVolumeArray` with the loader's
settings (:func:`build_volume_pipeline`):

- ``LoadVolumeNifti``: the whole volume, with the loader's ``preprocess``
  (HU window, slice spacing), else the test dataset's (raw LiTS files),
  else none. A config whose test data were prepared offline (e.g. the LiTS
  configs) must get the preparation's settings, e.g. ``--cfg-options
  test_dataloader.dataset.preprocess.window="(-200,250)"
  test_dataloader.dataset.preprocess.spacing_z=1.0``; a warning says so;
- ``LoadNoduleNpz`` (LIDC-IDRI release volumes): the whole volume windowed
  to [-1024, 400] HU as the release (not resampled: give a 1 mm volume);
- ``LoadDeepLesionSlices``: one slice stack per key slice, with the
  loader's ``num_slices``, ``slice_spacing``, ``hu_window``, ``out_range``;
- ``LoadVolumeArray``: used as it is.
"""
import copy
import os
import os.path as osp
from functools import partial
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import mmengine
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.device import get_device
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.registry import DATASETS, FUNCTIONS, MODELS, DefaultScope
from mmengine.runner import load_checkpoint
from rich.progress import track

from svd_mm.utils.medical_io import Volume, read_volume, volume_stem
from svd_mm.utils.volume_io import (LIDC_RELEASE_WINDOW, LITS_HU_WINDOW,
                                    make_geometry)

from ..launch import load_config, register_toolbox

__all__ = ['init_model', 'build_volume_pipeline', 'BaseVolumeInferencer']

ConfigType = Union[str, Path, Config, dict]
VolumeInput = Union[str, Path, Volume]


def init_model(config: ConfigType,
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from an mmseg / mmdet (/ mmpretrain) config and load a
    checkpoint.

    The config's ``default_scope`` names the toolbox; its modules and
    svd_mm's are registered and the model is built in that scope. The
    checkpoint is loaded strictly (every key, every shape), through
    mmengine's ``CheckpointLoader`` (``torch.load`` with its default
    ``weights_only=True``). The backbone's ``init_cfg`` (e.g. a pre-trained
    checkpoint used for training) is not applied: the checkpoint holds all
    weights. The inferencers build their models with this function.

    Args:
        config (str | Config | dict): Config file or object.
        checkpoint (str, optional): Checkpoint file. Defaults to None
            (random weights; only useful for tests).
        device (str, optional): ``'cpu'``, ``'cuda:0'``... Defaults to None
            (mmengine's ``get_device()``: CUDA if available, else the CPU).
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
    cfg = load_config(config, cfg_options)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    with DefaultScope.overwrite_default_scope(register_toolbox(cfg)):
        model = MODELS.build(model_cfg)
    model.cfg, model.dataset_meta = cfg, {}
    if checkpoint is not None:
        try:
            ckpt = load_checkpoint(
                model, checkpoint, map_location='cpu', strict=True,
                logger='silent')
        except RuntimeError as e:
            raise RuntimeError(
                f'Checkpoint {checkpoint} does not fit the model of config '
                f'{cfg.filename}: {e}') from e
        model.dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta') \
            or {}
    model.to(device or get_device())
    model.eval()
    return model


def _test_dataset_cfg(cfg: Config) -> dict:
    dataset = cfg.get('test_dataloader', {}).get('dataset', {}) or {}
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']  # wrappers (RepeatDataset, ...)
    return dataset


def _array_loader(first: dict, dataset: dict, cfg: Config):
    """The name of the file loader ``first`` and the
    :class:`LoadVolumeArray` that replaces it (see the module docstring)."""
    # registers LoadVolumeArray in mmengine's root TRANSFORMS
    from svd_mm.datasets.transforms.load_volume_array import LoadVolumeArray
    kind = first.pop('type', None)
    kind = getattr(kind, '__name__', kind)  # a class in a pure-Python cfg
    if kind == 'LoadNoduleNpz':  # LIDC release volumes: windowed uint8
        first['preprocess'] = dict(window=LIDC_RELEASE_WINDOW, spacing_z=None)
    if kind in ('LoadVolumeNifti', 'LoadNoduleNpz'):
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
        return kind, LoadVolumeArray(
            preprocess=preprocess, to_float32=first.get('to_float32', False))
    if kind == 'LoadDeepLesionSlices':
        keys = ('slice_spacing', 'hu_window', 'out_range')
        return kind, LoadVolumeArray(
            num_slices=first.get('num_slices', 9),
            **{k: first[k]
               for k in keys if k in first})
    if kind == 'LoadVolumeArray':
        return kind, LoadVolumeArray(**first)
    raise ValueError(
        f'The test pipeline of {cfg.filename} starts with {kind!r}; '
        'inference on a volume replaces LoadVolumeNifti, LoadNoduleNpz, '
        'LoadDeepLesionSlices or LoadVolumeArray by an in-memory loader')


def build_volume_pipeline(cfg: Config):
    """The config's test pipeline, started from an in-memory volume.

    The file loader is replaced (see the module docstring), annotation
    loaders (``LoadAnnotations``) are dropped, and so are 3D crops
    (:class:`~svd_mm.datasets.transforms.CenterCrop3D`,
    :class:`~svd_mm.datasets.transforms.RandomCrop3D`): the size of the
    last one is returned as ``info['crop_size']``, the window a
    segmentation inferencer slides over the whole volume.

    Args:
        cfg (Config): The config (``test_dataloader.dataset.pipeline``,
            else ``test_pipeline``).

    Returns:
        tuple: ``(loader, rest, info)``: the
        :class:`~svd_mm.datasets.transforms.LoadVolumeArray` that replaces
        the file loader, a ``Compose`` of the remaining transforms (built
        in the config's scope), and ``info`` (``loader``: the replaced
        type, ``mode``: ``'volume'`` or ``'stack'``, ``preprocess``,
        ``hu_window``: the HU window the model sees, or None,
        ``crop_size``: (D, H, W) of the dropped crop, or None, ``dropped``:
        names of the dropped crop transforms).
    """
    from svd_mm.datasets.transforms import CenterCrop3D, RandomCrop3D
    dataset = _test_dataset_cfg(cfg)
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise KeyError(f'Config {cfg.filename} has no test pipeline '
                       '(test_dataloader.dataset.pipeline or test_pipeline)')
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    kind, loader = _array_loader(pipeline[0], dataset, cfg)
    mode = 'volume' if loader.num_slices is None else 'stack'
    # the HU window the model sees: a stack's, else the preprocessing's
    hu_window = loader.hu_window if mode == 'stack' else None
    if loader.preprocess is not None:
        hu_window = tuple(loader.preprocess.get('window', LITS_HU_WINDOW))
    rest = [t for t in pipeline[1:] if t.get('type') != 'LoadAnnotations']
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        rest = Compose(rest)
    crops = [
        t for t in rest.transforms
        if isinstance(t, (CenterCrop3D, RandomCrop3D))
    ]
    rest.transforms = [t for t in rest.transforms if t not in crops]
    return loader, rest, dict(
        loader=kind,
        preprocess=loader.preprocess,
        hu_window=hu_window,
        mode=mode,
        crop_size=tuple(crops[-1].crop_size) if crops else None,
        dropped=[type(t).__name__ for t in crops])


def intensity_unit(volume: Volume) -> str:
    """'HU' for CT (a DICOM CT, or values down to air), else
    'intensity'."""
    modality = volume.meta.get('modality')
    is_ct = modality == 'CT' if modality else volume.array.min() <= -500
    return 'HU' if is_ct else 'intensity'


class BaseVolumeInferencer(BaseInferencer):
    """Base class of the volume inferencers.

    A call reads every input once, runs the test pipeline and the model
    on batches (:meth:`preprocess`), gives each input its results
    (``_collect``), draws pictures (:meth:`visualize`), writes the files (on
    the input's grid, named after it: the task's and
    ``<name>_result.json``) and returns the results (:meth:`postprocess`).
    Subclasses set ``task``, ``picture_key``, ``mode`` and ``runs`` and
    implement ``_model_base`` (the toolbox's model class), ``preprocess``
    (the pipeline inputs of every volume, batched by mmengine's
    ``preprocess``), ``_collect`` (the task's results of one volume from
    its data samples), ``_write_files`` and ``_draw``.

    Args:
        model (str | Config | dict | nn.Module): A config (file or object),
            or a model built by :func:`init_model` (used as it is).
        weights (str, optional): Checkpoint of a config's model, loaded
            strictly. Defaults to None (random weights: tests only).
        device (str, optional): Device of a model built here. Defaults to
            None (CUDA if available, else the CPU).
        cfg_options (dict, optional): Overrides of a config.
            Defaults to None.
        show_progress (bool): Show a progress bar over the batches.
            Defaults to False.
    """

    task = ''
    picture_key = ''
    #: the pipeline output the model takes: 'volume' or 'stack'
    mode = ''
    #: what the inferencer runs, for the error messages
    runs = ''
    visualize_kwargs: set = {'overlay', 'window'}

    def __init__(self,
                 model: Union[ConfigType, nn.Module],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 show_progress: bool = False) -> None:
        self._built_model = None
        if isinstance(model, nn.Module):
            if not hasattr(model, 'cfg'):
                raise ValueError('The model has no cfg: build it with '
                                 'init_model or set model.cfg to its config')
            if weights is not None or cfg_options:
                raise ValueError('weights and cfg_options go with a config; '
                                 'a built model is used as it is')
            self._built_model, cfg = model, model.cfg
        else:
            cfg = load_config(model, cfg_options)
        self.weights = weights
        super().__init__(cfg, weights, device, register_toolbox(cfg),
                         show_progress)
        name, info = type(self).__name__, self.pipeline_info
        if not isinstance(self.model, self._model_base()):
            raise ValueError(
                f'{name} runs {self.runs}, but {self.cfg.filename} builds '
                f'a {type(self.model).__name__}')
        if info['mode'] != self.mode:
            raise ValueError(
                f'{name} runs {self.runs}; the test pipeline of '
                f"{self.cfg.filename} loads {info['loader']}, which gives a "
                f"{info['mode']}")
        # class names: the checkpoint's, else the test dataset's metainfo
        # (built with lazy_init=True, as mmdet's DetInferencer does)
        classes = (getattr(self.model, 'dataset_meta', None)
                   or {}).get('classes')
        if not classes:
            dataset = dict(_test_dataset_cfg(self.cfg), lazy_init=True)
            try:
                with DefaultScope.overwrite_default_scope(self.scope):
                    classes = DATASETS.build(dataset).metainfo.get('classes')
            except Exception:  # no dataset type, or one that needs files
                classes = None
        self.dataset_classes = list(classes or [])

    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: str) -> nn.Module:
        """The given model, else :func:`init_model` (strict loading)."""
        return init_model(cfg, weights, device) \
            if self._built_model is None else self._built_model

    def _init_collate(self, cfg: Config) -> Callable:
        """The test dataloader's ``collate_fn`` (as the Runner builds it),
        else ``pseudo_collate``."""
        collate_cfg = dict(
            cfg.get('test_dataloader', {}).get('collate_fn') or {})
        collate_fn = collate_cfg.pop('type', 'pseudo_collate')
        if isinstance(collate_fn, str):
            collate_fn = FUNCTIONS.get(collate_fn)
        return partial(collate_fn, **collate_cfg)

    def _init_visualizer(self, cfg: Config) -> None:
        """None: the pictures are drawn by :mod:`svd_mm.visualization.
        overlay`, not by the config's (2D) visualizer."""
        return None

    def _init_pipeline(self, cfg: Config) -> Callable:
        self.loader, self.transforms, self.pipeline_info = \
            build_volume_pipeline(cfg)
        return self._run_pipeline

    def _run_pipeline(self, item: dict) -> dict:
        """Load one volume / stack, run the rest of the pipeline and note
        the input (``input_index``, ``key_slice``) and the grid the model
        sees (``model_grid``) in the data sample's metainfo."""
        meta = {k: item[k] for k in ('input_index', 'key_slice') if k in item}
        results = self.loader(item)
        if self.mode == 'volume':
            meta['model_grid'] = make_geometry(results['affine'],
                                               results['img_shape'])
        packed = self.transforms(results)
        if packed is None:
            raise ValueError('The test pipeline dropped the volume (a '
                             'transform returned None)')
        packed['data_samples'].set_metainfo(meta)
        return packed

    def __call__(self,
                 inputs: Union[VolumeInput, Sequence[VolumeInput]],
                 return_datasamples: bool = False,
                 batch_size: int = 1,
                 out_dir: str = '',
                 series_uid: Optional[str] = None,
                 **kwargs) -> dict:
        """Run the model on one or more volumes.

        Args:
            inputs (str | Volume | list): Volume file(s), DICOM series
                folder(s) or :class:`Volume` (s).
            return_datasamples (bool): Return the model's data samples as
                ``predictions`` instead of dicts. Defaults to False.
            batch_size (int): Pipeline outputs (volumes of one depth D, or
                slice stacks) per forward pass. Defaults to 1.
            out_dir (str): Folder for the files; '' writes nothing.
                Defaults to ''.
            series_uid (str, optional): Series to read from DICOM folders
                holding several. Defaults to None.
            **kwargs: Keys of ``preprocess_kwargs`` and
                ``visualize_kwargs``, e.g. ``overlay=True`` (PNG pictures
                in ``out_dir``) and ``window`` (their display window,
                (centre, width) or a preset name; default: the HU window
                the model sees).

        Returns:
            dict: ``predictions``: per input a dict (see the subclass) or
            its data sample(s); ``visualization``: per input the picture(s)
            written, or None without ``overlay``.
        """
        if kwargs.get('overlay') and not out_dir:
            raise ValueError('overlay=True needs out_dir for the pictures')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        pre, _, vis, _ = self._dispatch_kwargs(**kwargs)
        cases = []
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        for i, item in enumerate(inputs):  # a folder is one DICOM series
            volume = item if isinstance(item, Volume) else read_volume(
                str(item), series_uid=series_uid)
            stem = volume_stem(volume.source or 'volume')
            if any(case['stem'] == stem for case in cases):  # unique names
                stem = f'{stem}_{i}'
            cases.append(dict(index=i, volume=volume, stem=stem))
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        preds, batches = [], self.preprocess(cases, batch_size, **pre)
        for data in (track(batches, description='Inference')
                     if self.show_progress else batches):
            preds.extend(self.forward(data))
        for case in cases:
            case['data_samples'] = [
                p for p in preds if p.input_index == case['index']
            ]
            case['result'] = self._collect(case)
        visualization = self.visualize(cases, preds, out_dir, **vis)
        return self.postprocess(preds, visualization, return_datasamples,
                                cases, out_dir)

    def visualize(self,
                  cases: List[dict],
                  preds: list,
                  out_dir: str = '',
                  overlay: bool = False,
                  window=None,
                  **kwargs) -> Optional[list]:
        """The picture(s) of each input (``_draw``) with ``overlay``, else
        None; see :meth:`__call__` for the arguments."""
        if not overlay:
            return None
        hu_window = self.pipeline_info['hu_window']
        if window is None and hu_window is not None:  # (centre, width)
            low, high = (float(v) for v in hu_window)
            window = ((low + high) / 2, high - low)
        return [self._draw(case, out_dir, window, **kwargs) for case in cases]

    def postprocess(self,
                    preds: list,
                    visualization: Optional[list] = None,
                    return_datasamples: bool = False,
                    cases: Sequence[dict] = (),
                    out_dir: str = '') -> dict:
        """Write the files of every input (with ``out_dir``: the task's and
        ``<name>_result.json``) and pack the results.

        Returns:
            dict: ``predictions`` (per input: the results of ``_collect``
            with the input's geometry, ``volume`` and ``files``, or the
            data sample(s)) and ``visualization``.
        """
        predictions = []
        for i, case in enumerate(cases):
            volume, info = case['volume'], self.pipeline_info
            record = dict(
                task=self.task,
                input=volume.source,
                format=volume.format,
                shape_dhw=list(volume.shape),
                spacing_dhw_mm=list(volume.spacing),
                affine_ras=volume.affine.tolist(),
                config=self.cfg.filename,
                checkpoint=self.weights,
                test_loader=info['loader'],
                preprocess=info['preprocess'],
                files={},
                **case['result'])
            if visualization is not None:
                record['files'][self.picture_key] = visualization[i]
            if out_dir:
                files = record['files']
                files.update(self._write_files(case, record, out_dir))
                files['result'] = osp.join(out_dir,
                                           f"{case['stem']}_result.json")
                mmengine.dump({k: v for k, v in record.items()
                               if k not in ('mask', 'detections')},
                              files['result'], indent=1)
            samples = case['data_samples']
            predictions.append(
                (samples if self.mode == 'stack' else samples[0])
                if return_datasamples else dict(record, volume=volume))
        return dict(predictions=predictions, visualization=visualization)

    def class_names(self, num: int) -> List[str]:
        """The dataset's class names padded to ``num`` with ``'class i'``."""
        classes = self.dataset_classes
        return classes + [f'class {i}' for i in range(len(classes), num)]
