"""Plain-loop transcription of the DeepLesion FROC reading behind Table VI.

Written from reading ``FROC`` and ``sens_at_FP`` in ``mmdet/datasets/
lesion.py`` of urmagicsmine/MP3D (the rule 3DCE introduced): one Python
iteration per detection in score order, the per-detection curve
``(FPs / images, lesions found / lesions)`` and
``scipy.interpolate.interp1d(..., fill_value='extrapolate')`` on it, at the
FP rates up to the last FP. It is slow on purpose: the tests and
``benchmarks/froc.py`` check :class:`svd_mm.evaluation.metrics.FROCMetric`
against it.
"""
from typing import Dict, Sequence

import numpy as np
from scipy.interpolate import interp1d

__all__ = ['froc_reference']


def _reference_iou(box: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU of one box with each of ``gts`` (m, 4), as the reference: box
    width ``x2 - x1``, intersection over union by division."""
    iw = np.maximum(np.minimum(gts[:, 2], box[2]) -
                    np.maximum(gts[:, 0], box[0]), 0.)
    ih = np.maximum(np.minimum(gts[:, 3], box[3]) -
                    np.maximum(gts[:, 1], box[1]), 0.)
    inter = iw * ih
    union = ((box[2] - box[0]) * (box[3] - box[1]) +
             (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1]) - inter)
    with np.errstate(divide='ignore', invalid='ignore'):
        return inter / union


def froc_reference(det_bboxes: Sequence[np.ndarray],
                   det_scores: Sequence[np.ndarray],
                   gt_bboxes: Sequence[np.ndarray],
                   fp_rates: Sequence[float] = (0.5, 1, 2, 4),
                   hit_criterion: str = 'iou',
                   hit_thr: float = 0.5) -> Dict[str, np.ndarray]:
    """FROC sensitivities read as the MP3D / 3DCE DeepLesion evaluation does.

    1. Detections of all images are pooled and walked by score, highest
       first. Equal scores keep the input order here; the reference sorts
       with numpy's unstable ``argsort`` and leaves their order open.
    2. A detection whose best overlap with the lesions of its image is below
       ``hit_thr`` (or whose image has none) adds one FP; otherwise it marks
       every lesion it overlaps by ``hit_thr`` or more as found (once each).
    3. After each detection ``k`` the curve has the point
       ``(fps_k / num_images, tps_k / num_lesions)``.
    4. The sensitivity at each rate up to the last FP is read with
       ``interp1d(..., fill_value='extrapolate')`` on these points; the
       reference reports nothing beyond the last FP (NaN here).

    Args:
        det_bboxes (Sequence[np.ndarray]): Per image, detections (n_i, 4)
            as ``(x1, y1, x2, y2)``.
        det_scores (Sequence[np.ndarray]): Per image, scores (n_i, ).
        gt_bboxes (Sequence[np.ndarray]): Per image, lesions (m_i, 4).
        fp_rates (Sequence[float]): FPs per image to read.
            Defaults to ``(0.5, 1, 2, 4)``.
        hit_criterion (str): ``'iou'`` (the reference's), or ``'iobb'`` /
            ``'center'`` decided per pair by
            :func:`svd_mm.evaluation.metrics.froc_metric.box_hits` (not in
            the reference). Defaults to ``'iou'``.
        hit_thr (float): Overlap threshold. Defaults to 0.5.

    Returns:
        dict[str, np.ndarray]: ``sensitivities`` (len(fp_rates), ), NaN
        beyond the last FP (and where ``interp1d`` itself gives NaN or
        -inf: at rates up to the first point when the first two detections
        share their FP count); the per-detection curve ``fps_per_image`` and
        ``sensitivity`` (n, ).

    Examples:
        >>> import numpy as np
        >>> gts = [np.array([[0., 0., 10., 10.], [20., 20., 30., 30.]])]
        >>> dets = [np.array([[0., 0., 10., 10.], [50., 50., 60., 60.],
        ...                   [20., 20., 30., 30.], [70., 70., 80., 80.]])]
        >>> out = froc_reference(dets, [np.array([.9, .8, .7, .6])], gts,
        ...                      fp_rates=(0.5, 1, 2, 4))
        >>> out['sensitivities'].tolist()
        [0.5, 0.5, 1.0, nan]
    """
    num_images = len(gt_bboxes)
    gts = [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gt_bboxes]
    pooled = []
    for i in range(num_images):
        boxes = np.asarray(det_bboxes[i], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(det_scores[i], dtype=np.float64).reshape(-1)
        pooled += [(float(s), i, box) for s, box in zip(scores, boxes)]
    pooled.sort(key=lambda item: -item[0])  # stable
    if len(pooled) < 2:
        raise ValueError('The reference reading (interp1d) needs at least 2 '
                         f'detections, but got {len(pooled)}')

    found = [np.zeros(len(g), dtype=bool) for g in gts]
    num_found, num_fp = 0, 0
    tps, fps = [], []
    for _, i, box in pooled:
        if hit_criterion == 'iou':
            overlaps = _reference_iou(box, gts[i])
            # as the reference: a NaN overlap (0 / 0) is neither a miss
            # nor a hit
            miss = len(overlaps) == 0 or overlaps.max() < hit_thr
            hits = overlaps >= hit_thr
        else:
            from svd_mm.evaluation.metrics.froc_metric import box_hits
            hits = box_hits(box[None], gts[i], hit_criterion, hit_thr)
            miss = not hits.any()
        if miss:
            num_fp += 1
        for j in np.flatnonzero(hits):
            if not found[i][j]:
                found[i][j] = True
                num_found += 1
        tps.append(num_found)
        fps.append(num_fp)

    num_lesions = sum(len(g) for g in gts)
    fps_per_image = np.array(fps, dtype=np.float64) / num_images
    sensitivity = np.array(tps, dtype=np.float64) / num_lesions
    rates = np.asarray(fp_rates, dtype=np.float64)
    sens = np.full(rates.shape, np.nan)
    valid = rates <= fps_per_image[-1]
    if valid.any():
        read = interp1d(fps_per_image, sensitivity, fill_value='extrapolate')
        with np.errstate(divide='ignore', invalid='ignore'):
            sens[valid] = read(rates[valid])
    return dict(
        sensitivities=sens,
        fps_per_image=fps_per_image,
        sensitivity=sensitivity)
