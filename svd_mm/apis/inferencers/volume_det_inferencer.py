"""Lesion detection on the slices of a volume with an mmdet slice-stack
config (DeepLesion style)."""
import csv
import os.path as osp
from typing import List, Optional, Sequence

import mmengine
import numpy as np

from .base_volume_inferencer import BaseVolumeInferencer, intensity_unit

__all__ = ['VolumeDetInferencer']

CSV_COLUMNS = ('slice_index', 'label', 'class_name', 'score', 'x1_px',
               'y1_px', 'x2_px', 'y2_px', 'center_x_ras_mm',
               'center_y_ras_mm', 'center_z_ras_mm', 'width_mm', 'height_mm')


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
        model, weights, device, cfg_options, show_progress: As for
            :class:`BaseVolumeInferencer`.

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
        """Check the key slices, then batch their stacks.

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
            keys = range(num) if slices is None else map(int, slices)
            case['key_slices'] = list(keys)
            bad = [k for k in case['key_slices'] if not 0 <= k < num]
            if bad:
                raise ValueError(f'slices {bad} are outside the {num} slices '
                                 f"of {case['volume'].source}")
        return super().preprocess(
            (dict(volume=c['volume'], key_slice=k, img_path=c['volume'].source,
                  img_id=k, input_index=c['index'])
             for c in cases for k in c['key_slices']), batch_size)

    def _collect(self, case: dict) -> dict:
        """The classes and the boxes of every key slice, in pixels and RAS
        mm."""
        # the classes of a two-stage (roi_head.bbox_head) or single-stage
        # (bbox_head) detector
        head = getattr(
            getattr(self.model, 'roi_head', self.model), 'bbox_head', None)
        classes = self.class_names(int(getattr(head, 'num_classes', 1)))
        volume, detections = case['volume'], []
        _, sy, sx = volume.spacing
        for sample in case['data_samples']:
            k, found = sample.key_slice, sample.pred_instances.cpu().numpy()
            for (x1, y1, x2, y2), score, label in zip(
                    found.bboxes.tolist(), found.scores.tolist(),
                    found.labels.tolist()):
                *corners, centre = volume.dhw_to_ras(
                    np.array([[k, y1 - .5, x1 - .5], [k, y2 - .5, x2 - .5],
                              [k, (y1 + y2) / 2 - .5, (x1 + x2) / 2 - .5]]))
                detections.append(
                    dict(
                        slice_index=int(k),
                        label=label,
                        class_name=classes[label]
                        if 0 <= label < len(classes) else f'class {label}',
                        score=score,
                        bbox_px=[x1, y1, x2, y2],
                        center_ras_mm=centre.tolist(),
                        size_mm=[(x2 - x1) * sx, (y2 - y1) * sy],
                        corners_ras_mm=[c.tolist() for c in corners]))
        return dict(
            classes=classes,
            key_slices=case['key_slices'],
            num_slices_stack=self.loader.num_slices,
            slice_spacing_mm=self.loader.slice_spacing,
            detections=detections)

    def _write_files(self, case: dict, record: dict, out_dir: str) -> dict:
        stem = osp.join(out_dir, case['stem'])
        files = dict(
            boxes_csv=f'{stem}_boxes.csv', boxes_json=f'{stem}_boxes.json')
        mmengine.dump({
            k: record[k]
            for k in ('input', 'shape_dhw', 'spacing_dhw_mm', 'affine_ras',
                      'classes', 'key_slices', 'num_slices_stack',
                      'slice_spacing_mm', 'detections')
        }, files['boxes_json'], indent=1)
        with open(files['boxes_csv'], 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            writer.writerows([
                d['slice_index'], d['label'], d['class_name'],
                f"{d['score']:.6f}", *[f'{v:.2f}' for v in d['bbox_px']],
                *[f'{v:.3f}' for v in d['center_ras_mm']],
                *[f'{v:.3f}' for v in d['size_mm']]
            ] for d in record['detections'])
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
        volume, classes = case['volume'], case['result']['classes']
        detections = case['result']['detections']
        ranked = sorted((d for d in detections
                         if d['score'] >= pred_score_thr),
                        key=lambda d: -d['score'])
        chosen = list(dict.fromkeys(d['slice_index']
                                    for d in ranked))[:max_pictures]
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
                    class_names=classes,
                    score_thr=pred_score_thr,
                    window=window,
                    title=f'{osp.basename(volume.source)}: key slice {k} '
                    f'of {volume.shape[0]}',
                    unit=unit))
        return paths
