"""FROC (free-response ROC) metric of universal lesion detection.

Importing this module needs mmdet (the metric reads mmdet data samples and
registers in mmdet's ``METRICS``); :func:`box_hits` and
:meth:`FROCMetric.calculate` are plain numpy.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump
from mmengine.logging import MMLogger

from svd_mm.visualization.froc_curve import read_froc_curve

__all__ = ['FROCMetric', 'box_hits']

HIT_CRITERIA = ('iou', 'iobb', 'center')
CURVES = ('reference', 'max')


def box_hits(det_bboxes: np.ndarray,
             gt_bboxes: np.ndarray,
             hit_criterion: str = 'iou',
             hit_thr: float = 0.5) -> np.ndarray:
    """Whether detections hit ground truths, elementwise with broadcasting.

    Boxes are ``(x1, y1, x2, y2)`` with continuous coordinates (the box
    width is ``x2 - x1``, as in mmdet 3.x).

    Args:
        det_bboxes (np.ndarray): Detections of shape (..., 4).
        gt_bboxes (np.ndarray): Ground truths of shape (..., 4), broadcast
            against ``det_bboxes``.
        hit_criterion (str): ``'iou'``: intersection over union
            ``>= hit_thr``; ``'iobb'``: intersection over the area of the
            detected box ``>= hit_thr``; ``'center'``: the centre of the
            detected box lies inside the ground truth (borders included;
            ``hit_thr`` is not used). Defaults to ``'iou'``.
        hit_thr (float): Threshold of ``'iou'`` and ``'iobb'``.
            Defaults to 0.5.

    Returns:
        np.ndarray: Boolean array of the broadcast shape without the last
        axis. A detection of zero area never hits by IoU or IoBB.

    Examples:
        >>> import numpy as np
        >>> det = np.array([[0., 0., 10., 10.]])
        >>> gts = np.array([[0., 0., 10., 20.], [5., 5., 30., 30.]])
        >>> box_hits(det, gts, 'iou').tolist()
        [True, False]
        >>> box_hits(det, gts, 'iobb', 0.25).tolist()
        [True, True]
        >>> box_hits(det, gts, 'center').tolist()
        [True, True]
    """
    if hit_criterion not in HIT_CRITERIA:
        raise ValueError(f'hit_criterion must be one of {HIT_CRITERIA}, but '
                         f'got {hit_criterion!r}')
    det = np.asarray(det_bboxes, dtype=np.float64)
    gt = np.asarray(gt_bboxes, dtype=np.float64)
    if det.shape[-1:] != (4, ) or gt.shape[-1:] != (4, ):
        raise ValueError('Boxes must have shape (..., 4), but got '
                         f'{det.shape} (detections) and {gt.shape} (ground '
                         'truths)')
    if hit_criterion == 'center':
        cx = (det[..., 0] + det[..., 2]) / 2
        cy = (det[..., 1] + det[..., 3]) / 2
        return ((cx >= gt[..., 0]) & (cx <= gt[..., 2]) & (cy >= gt[..., 1])
                & (cy <= gt[..., 3]))
    iw = np.minimum(det[..., 2], gt[..., 2]) - np.maximum(
        det[..., 0], gt[..., 0])
    ih = np.minimum(det[..., 3], gt[..., 3]) - np.maximum(
        det[..., 1], gt[..., 1])
    inter = np.maximum(iw, 0.) * np.maximum(ih, 0.)
    det_area = (det[..., 2] - det[..., 0]) * (det[..., 3] - det[..., 1])
    if hit_criterion == 'iou':
        gt_area = (gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1])
        denom = det_area + gt_area - inter
    else:  # 'iobb'
        denom = det_area
    # inter >= thr * denom avoids dividing by a zero area; inter > 0 makes
    # a zero-area detection a miss even with hit_thr == 0.
    return (inter > 0) & (inter >= hit_thr * denom)


def _to_numpy(value, shape=(-1, 4)) -> np.ndarray:
    """Tensor / mmdet ``BaseBoxes`` / array-like -> float numpy array."""
    if hasattr(value, 'tensor'):  # mmdet BaseBoxes
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32).reshape(shape)


def _concat(arrays: Sequence, name: str,
            width: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Concatenate per-image arrays as float64; also return their lengths.

    ``width=4`` expects (n_i, 4) boxes, ``None`` expects (n_i, ) values.
    """
    shape = (-1, ) if width is None else (-1, width)
    counts = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    try:  # fast path: well-formed arrays
        cat = np.concatenate(list(arrays) + [np.zeros((0, ) + shape[1:])])
        ok = cat.shape == (counts.sum(), ) + shape[1:]
    except ValueError:
        ok = False
    if not ok:  # e.g. an empty image given as np.array([]) or lists
        parts = []
        for i, a in enumerate(arrays):
            a = np.asarray(a, dtype=np.float64)
            if a.size == 0:
                a = a.reshape((0, ) + shape[1:])
            if a.shape[1:] != shape[1:] or a.ndim != len(shape):
                raise ValueError(
                    f'{name}[{i}] must have shape '
                    f"{'(n, 4)' if width else '(n, )'}, but got {a.shape}")
            parts.append(a)
        cat = np.concatenate(parts + [np.zeros((0, ) + shape[1:])])
        counts = np.array([len(a) for a in parts], dtype=np.int64)
    return cat.astype(np.float64, copy=False), counts


@METRICS.register_module()
class FROCMetric(BaseMetric):
    """FROC sensitivities of lesion detection (DeepLesion's main metric).

    Detection is class-agnostic (DeepLesion has one class, ``lesion``). The
    sensitivity at ``r`` false positives (FPs) per image is computed with
    the rule of the DeepLesion evaluation that 3DCE and MP3D use (the
    ``FROC`` and ``sens_at_FP`` functions of ``mmdet/datasets/lesion.py`` in
    urmagicsmine/MP3D, behind the paper's Table VI):

    1. The detections of all images are pooled and sorted by score,
       highest first (ties keep the image order, then the order within the
       image).
    2. Walking down that list, a detection **finds** every ground-truth
       lesion of its own image that it hits (``hit_criterion``) and that no
       earlier detection has found; each lesion counts once. A detection
       that finds at least one new lesion is a true positive (TP).
    3. A detection that hits no lesion of its image (for ``'iou'``: its
       best IoU is below ``hit_thr``) is an FP, unless it hits an ignored
       box (``ignored_instances``), then it is neither.
    4. A detection that only re-hits lesions already found is neither a TP
       nor an FP.
    5. The reference interpolates the per-detection curve
       ``(fps_k / num_images, tps_k / num_lesions)`` (FPs and lesions found
       up to the ``k``-th detection) with ``interp1d``. As an FP finds no
       lesion, this reads, at ``r`` FPs per image, the fraction of lesions
       found before the ``c``-th FP, where ``c`` is the smallest count with
       ``c / num_images >= r``: a step curve, constant for
       ``r`` in ``((c - 1) / num_images, c / num_images]``. At exactly ``c``
       FPs it is the sensitivity at the detection that is the ``c``-th FP,
       not counting the lesions found after it. Images without lesions
       count in ``num_images``. This is the default, ``curve='reference'``.
    6. Beyond the last FP (``F / num_images`` for ``F`` FPs in all), where
       the reference reports nothing, the sensitivity is the final one (all
       detections used). Where the reference's ``interp1d`` is not finite
       (-inf or NaN: at rates up to its first point when the first two
       detections share their FP count, e.g. at 0 FPs per image) it is the
       sensitivity before the first FP, the value just to the right.

    ``curve='max'`` reads instead "the best sensitivity with ``f`` FPs":
    the curve has the point ``(f / num_images, s(f))`` for ``f = 0..F``,
    ``s(f)`` the fraction of lesions found before the ``(f + 1)``-th FP
    (``s(F)``: all detections), read by linear interpolation. It is never
    lower than the reference reading (higher by up to the lesions found
    between two FPs, a gap that shrinks with more images) and is not how
    the paper's numbers were computed.

    Deliberate differences from the reference, both outside its
    definition: equal scores keep the input order (image order, then the
    order within the image), where the reference leaves their order to
    numpy's unstable ``argsort``; hits on ``ignored_instances`` count as
    neither TP nor FP (the reference drops ``iscrowd`` boxes, so a
    detection on one is an FP there). Boxes are compared in float64 (the
    reference computes the IoU of mmdet's float32 results in float32).

    The main metric ``froc/mFROC`` is the mean of the sensitivities at
    ``fp_rates`` (0.5, 1, 2 and 4 FPs per image by default), also reported
    one by one as ``froc/sens@0.5``, ``froc/sens@1``, ...

    The computation is vectorised (all same-image pairs at once, the first
    hit of each lesion by a ``minimum`` reduction) and equals the plain-loop
    transcription of the reference, ``tests/helpers/froc_reference.py``,
    to the last bit up to the last FP.

    The predictions of mmdet detectors are rescaled to the original image,
    so the ground-truth boxes in the data samples must be too: load the
    annotations **after** ``Resize`` in the test pipeline (as mmdet's VOC
    configs do), and keep ``LoadAnnotations`` there so that ``PackDetInputs``
    puts them in ``gt_instances``::

        test_pipeline = [
            dict(type='LoadDeepLesionSlices'),
            dict(type='Resize', scale=(512, 512), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='SlicesToVolume'),
            dict(type='PackDetVolumeInputs', meta_keys=(...)),
        ]

    Args:
        fp_rates (Sequence[float]): FPs per image at which the sensitivity
            is reported. Defaults to ``(0.5, 1, 2, 4)``.
        hit_criterion (str): How a detection hits a lesion: ``'iou'``
            (IoU ``>= hit_thr``), ``'iobb'`` (intersection over the detected
            box ``>= hit_thr``) or ``'center'`` (the detection's centre is
            inside the lesion box). Defaults to ``'iou'``.
        hit_thr (float): Threshold of ``'iou'`` / ``'iobb'``.
            Defaults to 0.5.
        curve (str): How the curve is read: ``'reference'`` (the DeepLesion
            evaluation behind the paper's tables, rule 5) or ``'max'`` (the
            best sensitivity with ``f`` FPs, interpolated; higher, not the
            paper's reading). Defaults to ``'reference'``.
        with_map (bool): Also report the VOC-style (area) average precision
            at IoU ``hit_thr`` (0.5 with the other criteria) as
            ``froc/mAP`` (mmdet's ``eval_map``, one-to-one matching per
            image). Defaults to False.
        plot_dir (str, optional): When given, each evaluation writes the
            FROC curve to ``{plot_dir}/froc_curve.png`` (see
            :func:`svd_mm.visualization.plot_froc`) and its points to
            ``{plot_dir}/froc_curve.json``; with ``tools/test.py`` pass
            ``--cfg-options test_evaluator.plot_dir=DIR``. Defaults to None.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'froc'``.

    Examples:
        >>> import numpy as np
        >>> from svd_mm.evaluation.metrics import FROCMetric
        >>> gts = [np.array([[10., 10., 30., 30.]]), np.zeros((0, 4))]
        >>> dets = [np.array([[10., 10., 30., 30.], [50., 50., 60., 60.]]),
        ...         np.array([[0., 0., 5., 5.]])]
        >>> scores = [np.array([0.9, 0.8]), np.array([0.7])]
        >>> out = FROCMetric.calculate(dets, scores, gts, fp_rates=(0.5, 1))
        >>> out['sensitivities'].tolist()
        [1.0, 1.0]
        >>> out['curve_fps'].tolist(), out['curve_sens'].tolist()
        ([0.0, 0.5, 0.5, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0])
        >>> # a miss, then the lesion: found after the first FP
        >>> dets = [np.array([[50., 50., 60., 60.], [10., 10., 30., 30.]])]
        >>> scores, gts = [np.array([0.9, 0.8])], gts[:1]
        >>> FROCMetric.calculate(dets, scores, gts, (0.5, 1, 2)
        ...                      )['sensitivities'].tolist()
        [0.0, 0.0, 1.0]
        >>> FROCMetric.calculate(dets, scores, gts, (0.5, 1, 2), curve='max'
        ...                      )['sensitivities'].tolist()
        [0.5, 1.0, 1.0]
    """
    default_prefix: Optional[str] = 'froc'

    def __init__(self,
                 fp_rates: Sequence[float] = (0.5, 1, 2, 4),
                 hit_criterion: str = 'iou',
                 hit_thr: float = 0.5,
                 curve: str = 'reference',
                 with_map: bool = False,
                 plot_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        fp_rates = tuple(float(r) for r in np.atleast_1d(fp_rates))
        if not fp_rates or any(r < 0 for r in fp_rates):
            raise ValueError('fp_rates must be a non-empty sequence of '
                             f'non-negative FPs per image, but got {fp_rates}')
        if hit_criterion not in HIT_CRITERIA:
            raise ValueError(f'hit_criterion must be one of {HIT_CRITERIA}, '
                             f'but got {hit_criterion!r}')
        if hit_criterion != 'center' and not 0. < hit_thr <= 1.:
            raise ValueError(f'hit_thr must be in (0, 1], but got {hit_thr}')
        if curve not in CURVES:
            raise ValueError(f'curve must be one of {CURVES}, but got '
                             f'{curve!r}')
        self.fp_rates = fp_rates
        self.hit_criterion = hit_criterion
        self.hit_thr = hit_thr
        self.curve = curve
        self.with_map = with_map
        self.plot_dir = plot_dir

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the boxes and scores of a batch as small CPU arrays.

        Args:
            data_batch: A batch from the dataloader (unused).
            data_samples (Sequence[dict]): Data samples (as dicts) with
                ``pred_instances`` (``bboxes``, ``scores``) and
                ``gt_instances`` (``bboxes``); ``ignored_instances`` is
                optional.
        """
        for data_sample in data_samples:
            if 'gt_instances' not in data_sample:
                raise KeyError(
                    f'{self.__class__.__name__} reads the lesion boxes from '
                    "data_sample['gt_instances'], which is missing for "
                    f"image {data_sample.get('img_path')}: add "
                    "dict(type='LoadAnnotations', with_bbox=True) after "
                    "'Resize' in the test pipeline.")
            pred = data_sample['pred_instances']
            ignored = (data_sample.get('ignored_instances') or {}).get(
                'bboxes')
            self.results.append(
                dict(
                    img_id=data_sample.get('img_id'),
                    det_bboxes=_to_numpy(pred['bboxes']),
                    det_scores=_to_numpy(pred['scores'], shape=(-1, )),
                    gt_bboxes=_to_numpy(data_sample['gt_instances']['bboxes']),
                    ignored_bboxes=_to_numpy([] if ignored is None else
                                             ignored)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the FROC sensitivities from the processed results.

        Args:
            results (list[dict]): What :meth:`process` kept, one dict per
                image.

        Returns:
            dict[str, float]: ``mFROC``, ``sens@{rate}`` for each rate of
            ``fp_rates`` and, with ``with_map``, ``mAP``.
        """
        logger = MMLogger.get_current_instance()
        dets, scores, gts, ignored = ([r[key] for r in results] for key in (
            'det_bboxes', 'det_scores', 'gt_bboxes', 'ignored_bboxes'))
        froc = self.calculate(dets, scores, gts, self.fp_rates,
                              self.hit_criterion, self.hit_thr, ignored,
                              self.curve)
        sens = froc['sensitivities']
        metrics = dict(mFROC=float(sens.mean()))
        metrics.update(
            (f'sens@{r:g}', float(v)) for r, v in zip(self.fp_rates, sens))
        if self.with_map:
            metrics['mAP'] = self._average_precision(results)
        logger.info(
            f"FROC over {froc['num_images']} images, {froc['num_lesions']} "
            f'lesions ({self.hit_criterion}, {self.curve} reading): ' +
            ', '.join(f'{k}={v:.4f}' for k, v in metrics.items()))
        if self.plot_dir is not None:
            self._save_curve(froc, sens)
        return metrics

    def _average_precision(self, results: list) -> float:
        """VOC-style AP (area) at IoU ``hit_thr`` with mmdet's eval_map."""
        from mmdet.evaluation.functional import eval_map
        dets = [[np.hstack([r['det_bboxes'], r['det_scores'][:, None]])]
                for r in results]
        anns = [
            dict(bboxes=r['gt_bboxes'], bboxes_ignore=r['ignored_bboxes'],
                 labels=np.zeros(len(r['gt_bboxes']), np.int64),
                 labels_ignore=np.zeros(len(r['ignored_bboxes']), np.int64))
            for r in results
        ]
        thr = self.hit_thr if self.hit_criterion == 'iou' else 0.5
        mean_ap, _ = eval_map(
            dets, anns, iou_thr=thr, logger='silent', nproc=1)
        return float(mean_ap)

    def _save_curve(self, froc: dict, sens: np.ndarray) -> None:
        from svd_mm.visualization import plot_froc
        png = plot_froc(
            dict(detector=(froc['curve_fps'], froc['curve_sens'])),
            osp.join(self.plot_dir, 'froc_curve.png'),
            fp_rates=self.fp_rates)
        dump(
            dict(
                fps_per_image=froc['curve_fps'].tolist(),
                sensitivity=froc['curve_sens'].tolist(),
                fp_rates=list(self.fp_rates),
                sensitivities=sens.tolist(),
                num_images=froc['num_images'],
                num_lesions=froc['num_lesions'],
                hit_criterion=self.hit_criterion,
                hit_thr=self.hit_thr,
                curve=self.curve), osp.join(self.plot_dir, 'froc_curve.json'))
        MMLogger.get_current_instance().info(f'FROC curve saved to {png}')

    @staticmethod
    def calculate(
        det_bboxes: Sequence[np.ndarray],
        det_scores: Sequence[np.ndarray],
        gt_bboxes: Sequence[np.ndarray],
        fp_rates: Sequence[float] = (0.5, 1, 2, 4),
        hit_criterion: str = 'iou',
        hit_thr: float = 0.5,
        ignored_bboxes: Optional[Sequence[np.ndarray]] = None,
        curve: str = 'reference'
    ) -> Dict[str, Union[np.ndarray, int]]:
        """FROC curve and sensitivities at given FPs per image.

        The rule is described in :class:`FROCMetric`.

        Args:
            det_bboxes (Sequence[np.ndarray]): Per image, detections of
                shape (n_i, 4) as ``(x1, y1, x2, y2)``.
            det_scores (Sequence[np.ndarray]): Per image, scores (n_i, ).
            gt_bboxes (Sequence[np.ndarray]): Per image, lesion boxes
                (m_i, 4); (0, 4) for an image without lesions.
            fp_rates (Sequence[float]): FPs per image to report.
                Defaults to ``(0.5, 1, 2, 4)``.
            hit_criterion (str): ``'iou'``, ``'iobb'`` or ``'center'``, see
                :func:`box_hits`. Defaults to ``'iou'``.
            hit_thr (float): Threshold of ``'iou'`` / ``'iobb'``.
                Defaults to 0.5.
            ignored_bboxes (Sequence[np.ndarray], optional): Per image, boxes
                whose hits are neither TP nor FP. Defaults to None.
            curve (str): ``'reference'`` or ``'max'``, see
                :class:`FROCMetric`. Defaults to ``'reference'``.

        Returns:
            dict: ``sensitivities`` (len(fp_rates), ), the curve
            ``curve_fps`` / ``curve_sens``, ``num_images`` and
            ``num_lesions``. With F FPs in all, the ``'reference'`` curve
            is the step curve ``(0, b_1), (1/n, b_1), (1/n, b_2), ...,
            (F/n, b_F), (F/n, b_F+1)`` (2F + 1 points; ``b_c`` is the
            sensitivity before the ``c``-th FP, ``b_F+1`` the final one,
            ``n`` the number of images) and the ``'max'`` curve is
            ``(f/n, b_f+1)`` for ``f = 0..F`` (F + 1 points). Reading
            either with :func:`svd_mm.visualization.read_froc_curve` gives
            ``sensitivities``.
        """
        if curve not in CURVES:
            raise ValueError(f'curve must be one of {CURVES}, but got '
                             f'{curve!r}')
        num_images = len(gt_bboxes)
        if num_images == 0:
            raise ValueError('FROC needs at least one image')
        if not len(det_bboxes) == len(det_scores) == num_images:
            raise ValueError(
                'det_bboxes, det_scores and gt_bboxes must hold one entry '
                f'per image, but got {len(det_bboxes)}, {len(det_scores)} '
                f'and {num_images}')
        all_dets, num_dets = _concat(det_bboxes, 'det_bboxes', 4)
        all_scores, num_scores = _concat(det_scores, 'det_scores')
        all_gts, num_gts = _concat(gt_bboxes, 'gt_bboxes', 4)
        bad = np.flatnonzero(num_dets != num_scores)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f'Image {i} has {num_dets[i]} detected boxes '
                             f'but {num_scores[i]} scores')
        num_lesions = int(num_gts.sum())
        if num_lesions == 0:
            raise ValueError(
                f'FROC needs at least one lesion, but the {num_images} '
                'images have none')
        det_img = np.repeat(np.arange(num_images), num_dets)
        n = len(all_scores)

        # Global rank of every detection (0 = highest score); ties keep the
        # input order.
        order = np.argsort(-all_scores, kind='stable')
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)

        # All (detection, lesion) pairs of the same image.
        pair_det, pair_gt = FROCMetric._same_image_pairs(det_img, num_gts)
        hit = box_hits(all_dets[pair_det], all_gts[pair_gt], hit_criterion,
                       hit_thr)
        hits_any = np.bincount(pair_det[hit], minlength=n) > 0
        if ignored_bboxes is not None:
            all_ign, num_ign = _concat(ignored_bboxes, 'ignored_bboxes', 4)
            if len(num_ign) != num_images:
                raise ValueError('ignored_bboxes must hold one entry per '
                                 f'image, but got {len(num_ign)} for '
                                 f'{num_images} images')
            if len(all_ign):
                ign_det, ign_idx = FROCMetric._same_image_pairs(
                    det_img, num_ign)
                ign_hit = box_hits(all_dets[ign_det], all_ign[ign_idx],
                                   hit_criterion, hit_thr)
                hits_any |= np.bincount(ign_det[ign_hit], minlength=n) > 0
        is_fp = ~hits_any

        # Each lesion is found by the first detection (in score order) that
        # hits it; `n` marks a lesion that is never found.
        first_rank = np.full(num_lesions, n, dtype=np.int64)
        np.minimum.at(first_rank, pair_gt[hit], rank[pair_det[hit]])
        found_at_rank = np.bincount(
            first_rank[first_rank < n], minlength=n)
        found_cum = np.cumsum(found_at_rank)  # lesions found by rank <= k

        # b[c - 1]: lesions found before the c-th FP (an FP finds none, so
        # also up to it), c = 1..F; b[F]: all detections.
        fp_ranks = np.flatnonzero(is_fp[order])
        b = np.append(found_cum[fp_ranks],
                      found_cum[-1] if n else 0) / num_lesions
        curve_fps, curve_sens = FROCMetric._curve(b, num_images, curve)
        sens = read_froc_curve(curve_fps, curve_sens,
                               np.asarray(fp_rates, np.float64))
        return dict(sensitivities=sens, curve_fps=curve_fps,
                    curve_sens=curve_sens, num_images=num_images,
                    num_lesions=num_lesions)

    @staticmethod
    def _curve(b: np.ndarray, num_images: int,
               curve: str) -> Tuple[np.ndarray, np.ndarray]:
        """The points of a FROC curve from the sensitivities ``b`` before
        each FP (and after all detections, last), see :meth:`calculate`.

        Counts are divided by ``num_images`` as the reference divides its
        per-detection FP counts, so that a rate compares with them exactly.
        """
        num_fp = len(b) - 1
        if curve == 'max':
            return np.arange(num_fp + 1) / num_images, b
        steps = np.arange(1, num_fp + 1) / num_images
        xs = np.concatenate([[0.], np.repeat(steps, 2)])
        ys = np.concatenate([b[:1], np.stack([b[:-1], b[1:]], 1).ravel()])
        return xs, ys

    @staticmethod
    def _same_image_pairs(det_img: np.ndarray,
                          num_boxes: np.ndarray) -> List[np.ndarray]:
        """Detection indices and indices into the concatenated boxes of
        every (detection, box) pair of the same image, from the image index
        of each detection and the number of boxes of each image."""
        box_start = np.cumsum(num_boxes) - num_boxes
        per_det = num_boxes[det_img]
        pair_det = np.repeat(np.arange(len(det_img)), per_det)
        det_start = np.cumsum(per_det) - per_det
        within = np.arange(len(pair_det)) - np.repeat(det_start, per_det)
        pair_box = np.repeat(box_start[det_img], per_det) + within
        return [pair_det, pair_box]
