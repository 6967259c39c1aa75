"""Write the test predictions of a 3D segmentor as NIfTI files."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from svd_mm.utils.medical_io import volume_stem
from svd_mm.utils.volume_io import Volume, save_prediction_nifti

__all__ = ['SaveVolumePredictionHook']


@HOOKS.register_module()
class SaveVolumePredictionHook(Hook):
    """Save every test prediction as a NIfTI file on the original grid.

    After each test iteration, the ``pred_sem_seg`` (1, D, H, W) of every
    output data sample, made on the grid of the network input (metainfo
    ``affine`` and ``ori_shape``, e.g. the 1 mm slices of a prepared LiTS
    volume), is resampled with the nearest voxel onto
    ``original_geometry`` (the raw volume's grid, set by
    :class:`~svd_mm.datasets.transforms.LoadVolumeNifti`) and written with
    the original affine by
    :func:`~svd_mm.utils.volume_io.save_prediction_nifti`, so that it
    overlays the raw volume. Each process writes its own samples.

    Enable it for a test run, e.g.::

        python tools/test.py CONFIG CKPT --cfg-options \\
            custom_hooks.0.out_dir=work_dirs/lits_predictions

    Args:
        out_dir (str, optional): Output folder; relative paths are relative
            to the work dir. Defaults to None: nothing is written.
        filename_tmpl (str): File name, formatted with ``case_id`` (the
            metainfo ``case_id``, else the image file name without suffix,
            :func:`~svd_mm.utils.medical_io.volume_stem`).
            Defaults to '{case_id}_pred.nii.gz'.
        original_grid (bool): Whether to write on ``original_geometry``
            (else on the grid of the prediction). Defaults to True.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: Optional[str] = None,
                 filename_tmpl: str = '{case_id}_pred.nii.gz',
                 original_grid: bool = True):
        if not filename_tmpl.endswith(('.nii', '.nii.gz')):
            raise ValueError('filename_tmpl must end with .nii or .nii.gz, '
                             f'got {filename_tmpl!r}')
        self.out_dir = out_dir
        self.filename_tmpl = filename_tmpl
        self.original_grid = original_grid

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Write the predictions of one test batch."""
        if self.out_dir is None or not outputs:
            return
        out_dir = osp.join(runner.work_dir, self.out_dir)
        for sample in outputs:
            meta = sample.metainfo
            for key in ('affine', 'ori_shape'):
                if key not in meta:
                    raise KeyError(
                        f'SaveVolumePredictionHook needs the metainfo '
                        f'{key!r} (load volumes with LoadVolumeNifti and '
                        'pack them with PackSegVolumeInputs), but '
                        f"{meta.get('img_path')} has {sorted(meta)}")
            pred = sample.pred_sem_seg.data.detach().cpu().numpy()
            if pred.ndim != 4 or pred.shape[0] != 1:
                raise ValueError(
                    'SaveVolumePredictionHook needs a (1, D, H, W) '
                    f'pred_sem_seg, but got shape {pred.shape} for '
                    f"{meta.get('img_path')}")
            case_id = meta.get('case_id')
            case_id = volume_stem(meta.get('img_path') or '') \
                if case_id is None else str(case_id)
            if not case_id:
                raise KeyError('SaveVolumePredictionHook needs the metainfo '
                               "'case_id' or 'img_path' to name the file")
            original = meta.get('original_geometry') \
                if self.original_grid else None
            save_prediction_nifti(
                Volume(pred[0], meta['affine'], meta.get('img_path', '')),
                osp.join(out_dir, self.filename_tmpl.format(case_id=case_id)),
                original)
