"""Segmentation of whole volumes with an mmseg config (e.g.
``EncoderDecoder3D``)."""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.config import ConfigDict
from mmengine.logging import print_log

from svd_mm.utils.medical_io import Volume, read_volume, write_mask
from svd_mm.utils.volume_io import resample_to_geometry, same_geometry

from .base_volume_inferencer import BaseVolumeInferencer, intensity_unit

__all__ = ['VolumeSegInferencer']


class VolumeSegInferencer(BaseVolumeInferencer):
    """Segment whole volumes with an mmseg config, e.g. ``EncoderDecoder3D``
    (mmseg's ``MMSegInferencer`` for volumes).

    The label mask is written as NIfTI on the input's grid (same shape and
    affine, whatever the input format); a prediction made on a resampled
    grid (e.g. a ``preprocess`` with ``spacing_z``) is mapped back by
    nearest voxel.

    **Crop-trained models.** A config whose test pipeline crops (e.g. the
    LIDC configs: ``CenterCrop3D(crop_size=48)``) runs over the whole
    volume: the crop is dropped and the model's ``test_cfg`` becomes
    ``mode='slide'`` with the crop as ``crop_size`` and ``stride`` = the
    crop times ``1 - overlap``, rounded (other keys such as
    ``batch_windows`` kept; MONAI's ``sliding_window_inference`` pads axes
    shorter than the window); :attr:`sliding_window` and each result's
    ``sliding_window`` hold them. The config file is not changed; the
    test_cfg of a model passed in built is changed in place.

    Args:
        model, weights, device, cfg_options, show_progress: As for
            :class:`BaseVolumeInferencer`.
        overlap (float): Overlap of neighbouring windows, in [0, 1), for a
            crop-trained model. Defaults to 0.5.

    Examples:
        >>> inferencer = VolumeSegInferencer(
        ...     'configs/lits/unet3d_r3d18-scratch_8xb2-500e_lits-'
        ...     '32x256x256.py', 'liver.pth', cfg_options={
        ...         'test_dataloader.dataset.preprocess': dict(
        ...             window=(-200, 250), spacing_z=1.0)})
        >>> out = inferencer('ct.nrrd', out_dir='results', overlay=True)
        >>> out['predictions'][0]['mask'].shape  # the input's (D, H, W)
    """

    task = 'seg'
    picture_key = 'overlay'
    mode = 'volume'
    runs = 'mmseg segmentors on whole volumes'
    preprocess_kwargs: set = {'gt'}

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 overlap: float = 0.5,
                 show_progress: bool = False) -> None:
        if not 0 <= overlap < 1:
            raise ValueError(f'overlap must lie in [0, 1), got {overlap}')
        super().__init__(model, weights, device, cfg_options, show_progress)
        self.sliding_window = None
        if self.pipeline_info['crop_size'] is None:
            return
        # a crop-trained model: sliding crop-sized windows over the volume
        from svd_mm.models.segmentors import EncoderDecoder3D
        dropped = ', '.join(self.pipeline_info['dropped'])
        if not isinstance(self.model, EncoderDecoder3D):
            raise ValueError(
                f'The test pipeline of {self.cfg.filename} crops ({dropped}) '
                'and the whole volume is then segmented with sliding '
                'windows, which needs an EncoderDecoder3D, but the config '
                f'builds a {type(self.model).__name__}')
        crop_size = [int(c) for c in self.pipeline_info['crop_size']]
        stride = [max(1, round(c * (1 - overlap))) for c in crop_size]
        self.model.test_cfg = ConfigDict(
            self.model.test_cfg or {},
            mode='slide',
            crop_size=tuple(crop_size),
            stride=tuple(stride))
        print_log(
            f'{self.cfg.filename}: the test pipeline crops ({dropped}); '
            'the crop is dropped and the model slides a '
            f'{"x".join(map(str, crop_size))} (D x H x W) window over the '
            f'whole volume with overlap {overlap:g} (stride {tuple(stride)})',
            logger='current')
        self.sliding_window = dict(
            crop_size=crop_size, stride=stride, overlap=overlap)

    def _model_base(self) -> type:
        from mmseg.models.segmentors import BaseSegmentor
        return BaseSegmentor

    def preprocess(self,
                   cases: List[dict],
                   batch_size: int = 1,
                   gt: Union[str, Sequence[Optional[str]], None] = None):
        """Read the ground truths (if any), then batch the volumes.

        Args:
            cases (list[dict]): The inputs read.
            batch_size (int): Volumes per forward pass. Defaults to 1.
            gt (str | Sequence[str], optional): True label mask on the
                input's grid (any format), one per input: drawn dashed in
                the pictures, and the Dice of the foregrounds (labels > 0)
                of prediction and truth reported. Defaults to None.

        Returns:
            Iterator[dict]: Collated batches.
        """
        if gt is None:
            gt = [None] * len(cases)
        elif isinstance(gt, (str, Path)):
            gt = [gt]
        if len(gt) != len(cases):
            raise ValueError(f'{len(gt)} ground truths for {len(cases)} '
                             'inputs: give one per input (None for none)')
        for case, path in zip(cases, gt):
            if path is None:
                continue
            truth, volume = read_volume(str(path)), case['volume']
            if not same_geometry(truth.geometry, volume.geometry):
                raise ValueError(
                    f'Ground truth {path} (shape {truth.shape}) is not on '
                    f'the grid of {volume.source} (shape {volume.shape}): '
                    'their shapes or affines differ')
            labels = np.rint(truth.array)
            if labels.min() < 0 or labels.max() > 255:
                raise ValueError(f'{path} holds values outside [0, 255]; is '
                                 'it a label map?')
            case['gt'], case['gt_path'] = labels.astype(np.uint8), str(path)
        return super().preprocess(
            (dict(volume=c['volume'], img_path=c['volume'].source,
                  case_id=c['stem'], input_index=c['index']) for c in cases),
            batch_size)

    def _collect(self, case: dict) -> dict:
        """The mask on the input's grid (from the model's prediction on its
        own grid), its classes, voxels and mL, and the Dice with the ground
        truth."""
        sample, volume = case['data_samples'][0], case['volume']
        grid = sample.model_grid
        pred = sample.pred_sem_seg.data.detach().cpu().numpy()
        pred = pred[0] if pred.ndim == 4 else pred
        if tuple(pred.shape) != tuple(grid['shape']):
            raise ValueError(
                f'The model predicted a (D, H, W) {tuple(pred.shape)} mask '
                f"for the {tuple(grid['shape'])} volume of the loader; the "
                'test pipeline must keep the volume whole for inference')
        if same_geometry(grid, volume.geometry, atol=1e-6):
            mask = pred.astype(np.uint8)
        else:  # e.g. resampled to 1 mm slices: back onto the input grid
            mask = resample_to_geometry(
                Volume(pred, grid['affine']), volume.geometry,
                order=0).array.astype(np.uint8)
        classes = self.class_names(
            max(int(getattr(self.model, 'num_classes', 2) or 2),
                int(mask.max()) + 1))
        voxel_ml = abs(float(np.linalg.det(volume.affine[:3, :3]))) / 1000.
        counts = np.bincount(mask.ravel(), minlength=len(classes))
        voxels = dict(zip(classes[1:], counts[1:].tolist()))
        result = dict(
            mask=mask,
            classes=classes,
            model_grid_shape_dhw=list(grid['shape']),
            model_grid_spacing_dhw_mm=list(grid['spacing']),
            sliding_window=self.sliding_window,
            voxels=voxels,
            volume_ml={k: n * voxel_ml
                       for k, n in voxels.items()})
        if 'gt' in case:  # Dice of the foregrounds
            pred, truth = mask > 0, case['gt'] > 0
            total = int(pred.sum()) + int(truth.sum())
            result.update(
                dice=2. * int((pred & truth).sum()) / total if total else 1.,
                gt=case['gt_path'])
        return result

    def _write_files(self, case: dict, record: dict, out_dir: str) -> dict:
        return dict(
            mask=write_mask(record['mask'], case['volume'],
                            osp.join(out_dir, f"{case['stem']}_seg.nii.gz")))

    def _draw(self, case: dict, out_dir: str, window) -> str:
        from svd_mm.visualization.overlay import plot_volume_overlay
        volume, result = case['volume'], case['result']
        dice = f", Dice {result['dice']:.3f}" if 'dice' in result else ''
        return plot_volume_overlay(
            volume.array,
            volume.affine,
            osp.join(out_dir, f"{case['stem']}_overlay.png"),
            pred=result['mask'],
            gt=case.get('gt'),
            window=window,
            class_names=result['classes'],
            title=f'{osp.basename(volume.source)}: '
            f'{osp.basename(self.cfg.filename or "model")}{dice}',
            unit=intensity_unit(volume))
