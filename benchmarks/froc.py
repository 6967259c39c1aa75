"""Benchmark: svd_mm's vectorised FROC against a per-detection Python loop.

Both implement the rule documented in
:class:`svd_mm.evaluation.metrics.FROCMetric` (pooled detections sorted by
score; a detection finds every not-yet-found lesion of its image that it
hits; it is an FP when it hits no lesion; linear interpolation on the
(FPs per image, sensitivity) curve). The reference walks the sorted
detections one by one in plain Python floats, with the same arithmetic as
:func:`svd_mm.evaluation.metrics.froc_metric.box_hits`, so the two must give
identical curves; the script exits with status 1 when they do not.

Usage::

    python benchmarks/froc.py [--num-images 1000] [--num-dets 10000]
        [--criteria iou iobb center] [--repeat 5] [--seed 0]
"""
import argparse
import math
import sys
import time

import numpy as np

from svd_mm.evaluation.metrics.froc_metric import FROCMetric

FP_RATES = (0.5, 1, 2, 4)


def make_detections(num_images: int, num_dets: int, seed: int = 0):
    """Random lesions (0-3 per image, some images without any) and
    detections: jittered copies of the lesions (incl. duplicates) with high
    scores and random boxes with lower scores, ``num_dets`` in total."""
    rng = np.random.default_rng(seed)
    gts = []
    for _ in range(num_images):
        m = rng.choice(4, p=[0.2, 0.4, 0.3, 0.1])
        xy = rng.uniform(0, 450, size=(m, 2))
        wh = rng.uniform(8, 60, size=(m, 2))
        gts.append(np.hstack([xy, xy + wh]))
    per_image = rng.multinomial(num_dets, np.full(num_images, 1 / num_images))
    dets, scores = [], []
    for gt, n in zip(gts, per_image):
        boxes = []
        near = min(n, rng.integers(1, 3 * len(gt) + 1)) if len(gt) else 0
        for _ in range(near):  # near a lesion: a hit, a duplicate or a miss
            g = gt[rng.integers(len(gt))]
            size = g[2:] - g[:2]
            shift = rng.normal(0, 0.15, 2) * size
            scale = np.exp(rng.normal(0, 0.2, 2))
            c = (g[:2] + g[2:]) / 2 + shift
            half = size * scale / 2
            boxes.append(np.hstack([c - half, c + half]))
        for _ in range(n - near):  # anywhere in the image
            xy = rng.uniform(0, 450, 2)
            boxes.append(np.hstack([xy, xy + rng.uniform(8, 60, 2)]))
        boxes = np.array(boxes).reshape(-1, 4)
        s = np.hstack(
            [rng.uniform(0.3, 1., near),
             rng.uniform(0., 0.8, n - near)])
        dets.append(boxes)
        scores.append(s)
    return dets, scores, gts


def _hit(d, g, criterion, thr):
    """One detection against one lesion, plain floats; same operations
    (and order) as ``box_hits``."""
    if criterion == 'center':
        cx = (d[0] + d[2]) / 2
        cy = (d[1] + d[3]) / 2
        return g[0] <= cx <= g[2] and g[1] <= cy <= g[3]
    iw = min(d[2], g[2]) - max(d[0], g[0])
    ih = min(d[3], g[3]) - max(d[1], g[1])
    inter = max(iw, 0.) * max(ih, 0.)
    det_area = (d[2] - d[0]) * (d[3] - d[1])
    if criterion == 'iou':
        denom = det_area + (g[2] - g[0]) * (g[3] - g[1]) - inter
    else:
        denom = det_area
    return inter > 0 and inter >= thr * denom


def froc_loop(det_bboxes, det_scores, gt_bboxes, fp_rates=FP_RATES,
              hit_criterion='iou', hit_thr=0.5):
    """Straightforward FROC: one Python iteration per detection."""
    dets = [b.tolist() for b in det_bboxes]
    gts = [g.tolist() for g in gt_bboxes]
    pooled = [(s, i, j) for i, ss in enumerate(det_scores)
              for j, s in enumerate(ss.tolist())]
    pooled.sort(key=lambda t: -t[0])  # stable: ties keep the input order
    found = [[False] * len(g) for g in gts]
    num_found = 0
    found_before_fp = []  # s(f) for f = 0..F-1
    for _, i, j in pooled:
        d = dets[i][j]
        any_hit = False
        for k, g in enumerate(gts[i]):
            if _hit(d, g, hit_criterion, hit_thr):
                any_hit = True
                if not found[i][k]:
                    found[i][k] = True
                    num_found += 1
        if not any_hit:
            found_before_fp.append(num_found)
    found_before_fp.append(num_found)  # s(F)
    num_images = len(gts)
    num_lesions = sum(len(g) for g in gts)
    curve_fps = [f / num_images for f in range(len(found_before_fp))]
    curve_sens = [c / num_lesions for c in found_before_fp]
    sens = []
    for rate in fp_rates:
        x = rate * num_images  # in FP counts
        last = len(found_before_fp) - 1
        if x >= last:
            sens.append(curve_sens[last])
        else:
            f0 = math.floor(x)
            t = x - f0
            sens.append(curve_sens[f0] + t *
                        (curve_sens[f0 + 1] - curve_sens[f0]))
    return dict(sensitivities=np.array(sens), curve_fps=np.array(curve_fps),
                curve_sens=np.array(curve_sens))


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=1000)
    parser.add_argument('--num-dets', type=int, default=10000)
    parser.add_argument(
        '--criteria', nargs='+', default=['iou', 'iobb', 'center'],
        choices=['iou', 'iobb', 'center'])
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    dets, scores, gts = make_detections(args.num_images, args.num_dets,
                                        args.seed)
    print(f'{sum(len(d) for d in dets)} detections, '
          f'{sum(len(g) for g in gts)} lesions, {len(gts)} images '
          f'({sum(len(g) == 0 for g in gts)} without lesions)')
    ok = True
    for criterion in args.criteria:
        t_loop, ref = best_time(
            lambda: froc_loop(dets, scores, gts, FP_RATES, criterion),
            args.repeat)
        t_vec, out = best_time(
            lambda: FROCMetric.calculate(dets, scores, gts, FP_RATES,
                                         criterion), args.repeat)
        same_curve = (np.array_equal(ref['curve_fps'], out['curve_fps'])
                      and np.array_equal(ref['curve_sens'],
                                         out['curve_sens']))
        diff = float(np.abs(ref['sensitivities'] -
                            out['sensitivities']).max())
        ok &= same_curve and diff <= 1e-12
        sens = ', '.join(f'{r:g}: {s:.4f}'
                         for r, s in zip(FP_RATES, out['sensitivities']))
        print(f'[{criterion:6s}] sens@FPs/img {{{sens}}} '
              f'mean {out["sensitivities"].mean():.4f} | identical curve: '
              f'{same_curve}, max |diff| of sens: {diff:.1e} | '
              f'loop {t_loop * 1e3:.1f} ms, svd_mm {t_vec * 1e3:.2f} ms, '
              f'speed-up {t_loop / t_vec:.1f}x')
    if not ok:
        print('MISMATCH between svd_mm and the reference loop')
        sys.exit(1)


if __name__ == '__main__':
    main()
