"""Lesion detection on the slices of a volume with an mmdet slice-stack
config (DeepLesion style)."""
import csv
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from svd_mm.utils.medical_io import Volume

from .base_volume_inferencer import BaseVolumeInferencer, intensity_unit

__all__ = ['VolumeDetInferencer']

CSV_COLUMNS = ('slice_index', 'label', 'class_name', 'score', 'x1_px',
               'y1_px', 'x2_px', 'y2_px', 'center_x_ras_mm',
               'center_y_ras_mm', 'center_z_ras_mm', 'width_mm', 'height_mm')


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


class VolumeDetInferencer(BaseVolumeInferencer):
    """Detect lesions on the key slices of volumes with an mmdet slice-stack
    config (mmdet's ``DetInferencer`` for volumes).

    Every key slice (or each of ``slices``) becomes one stack of its
    neighbouring slices (the test pipeline's ``LoadDeepLesionSlices``
    settings); ``batch_size`` stacks go through the model at once. The
    boxes are written as JSON and CSV.

    Coordinates: ``bbox_px`` is (x1, y1, x2, y2) in the key slice's pixels
    with pixel ``i`` spanning [i, i + 1) (mmdet's convention); the RAS
    millimetres of a box point (u, v) on slice ``k`` are
    ``affine @ (u - 0.5, v - 0.5, k, 1)`` (voxel centres sit at integer
    indices), see :mod:`svd_mm.utils.medical_io` for the RAS convention.

    Args:
        model (str | Config | dict | nn.Module): Config or built model, see
            :class:`BaseVolumeInferencer`.
        weights (str, optional): Checkpoint. Defaults to None.
        device (str, optional): Device. Defaults to None.
        cfg_options (dict, optional): Config overrides. Defaults to None.
        show_progress (bool): Progress bar. Defaults to False.

    Examples:
        >>> inferencer = VolumeDetInferencer(
        ...     'configs/deeplesion/CONFIG.py', 'lesions.pth')
        >>> out = inferencer('ct_folder/', slices=[20, 21], out_dir='res',
        ...                  overlay=True, pred_score_thr=0.3)
        >>> out['predictions'][0]['detections'][0]['center_ras_mm']
    """

    task = 'det'
    picture_key = 'pictures'
    mode = 'stack'
    runs = 'mmdet detectors on slice stacks (LoadDeepLesionSlices)'
    preprocess_kwargs: set = {'slices'}
    visualize_kwargs: set = {
        'overlay', 'window', 'pred_score_thr', 'max_pictures'
    }

    def _model_base(self) -> type:
        from mmdet.models.detectors import BaseDetector
        return BaseDetector

    def preprocess(self,
                   cases: List[dict],
                   batch_size: int = 1,
                   slices: Optional[Sequence[int]] = None):
        """Check the key slices, then yield the batches of stacks.

        Args:
            cases (list[dict]): The inputs read.
            batch_size (int): Slice stacks per forward pass. Defaults to 1.
            slices (Sequence[int], optional): Key slices (indices along D)
                of every input. Defaults to None (every slice).

        Returns:
            Iterator[dict]: Collated batches.
        """
        for case in cases:
            num = case['volume'].shape[0]
            keys = list(range(num)) if slices is None else [
                int(k) for k in slices
            ]
            bad = [k for k in keys if not 0 <= k < num]
            if bad:
                raise ValueError(f'slices {bad} are outside the {num} slices '
                                 f"of {case['volume'].source}")
            case['key_slices'] = keys
        return super().preprocess(cases, batch_size)

    def _pipeline_inputs(self, case: dict):
        for k in case['key_slices']:
            yield dict(
                volume=case['volume'],
                key_slice=k,
                img_path=case['volume'].source,
                img_id=k,
                input_index=case['index'])

    def _num_classes(self) -> int:
        """Classes of a two-stage (``roi_head.bbox_head``) or single-stage
        (``bbox_head``) detector."""
        for head in (getattr(getattr(self.model, 'roi_head', None),
                             'bbox_head', None),
                     getattr(self.model, 'bbox_head', None)):
            if head is not None and hasattr(head, 'num_classes'):
                return int(head.num_classes)
        return 1

    def _collect(self, case: dict) -> None:
        """The boxes of every key slice, in pixels and RAS mm."""
        case['classes'] = self.class_names(self._num_classes())
        case['detections'] = []
        for sample in case['data_samples']:
            instances = sample.pred_instances
            for box, score, label in zip(instances.bboxes.cpu().numpy(),
                                         instances.scores.cpu().numpy(),
                                         instances.labels.cpu().numpy()):
                case['detections'].append(
                    _box_record(case['volume'], sample.key_slice, box,
                                float(score), int(label), case['classes']))

    def _task_record(self, case: dict) -> dict:
        return dict(
            classes=case['classes'],
            key_slices=case['key_slices'],
            num_slices_stack=self.loader.num_slices,
            slice_spacing_mm=self.loader.slice_spacing,
            detections=case['detections'])

    def _write_files(self, case: dict, record: dict, out_dir: str) -> dict:
        stem = case['stem']
        files = dict(
            boxes_csv=_write_boxes_csv(
                case['detections'], osp.join(out_dir, f'{stem}_boxes.csv')),
            boxes_json=osp.join(out_dir, f'{stem}_boxes.json'))
        with open(files['boxes_json'], 'w') as f:
            json.dump({
                k: record[k]
                for k in ('input', 'shape_dhw', 'spacing_dhw_mm',
                          'affine_ras', 'classes', 'key_slices',
                          'num_slices_stack', 'slice_spacing_mm',
                          'detections')
            },
                      f,
                      indent=1)
        return files

    def _draw(self,
              case: dict,
              out_dir: str,
              window,
              pred_score_thr: float = 0.5,
              max_pictures: int = 6) -> List[str]:
        """The ``max_pictures`` key slices with the best boxes scoring at
        least ``pred_score_thr`` (the middle key slice if none), one PNG
        each."""
        from svd_mm.visualization.overlay import plot_slice_boxes
        volume, detections = case['volume'], case['detections']
        best: Dict[int, float] = {}
        for d in detections:
            if d['score'] >= pred_score_thr:
                best[d['slice_index']] = max(
                    best.get(d['slice_index'], 0), d['score'])
        chosen = sorted(best, key=lambda k: -best[k])[:max_pictures]
        if not chosen:  # show that nothing was found
            chosen = [case['key_slices'][len(case['key_slices']) // 2]]
        paths, unit = [], intensity_unit(volume)
        for k in sorted(chosen):
            dets = [d for d in detections if d['slice_index'] == k]
            paths.append(
                plot_slice_boxes(
                    volume.array[k],
                    volume.affine,
                    osp.join(out_dir, f"{case['stem']}_slice{k:03d}.png"),
                    boxes=np.array([d['bbox_px']
                                    for d in dets]).reshape(-1, 4),
                    scores=np.array([d['score'] for d in dets]),
                    labels=np.array([d['label'] for d in dets],
                                    dtype=np.int64),
                    class_names=case['classes'],
                    score_thr=pred_score_thr,
                    window=window,
                    title=f'{osp.basename(volume.source)}: key slice {k} '
                    f'of {volume.shape[0]}',
                    unit=unit))
        return paths
