"""Benchmark: svd_mm's vectorised FROC against the reference loop.

The reference is :func:`tests.helpers.froc_reference`, a plain-loop
transcription of the DeepLesion evaluation of MP3D / 3DCE (``FROC`` +
``sens_at_FP``: one iteration per detection, then ``interp1d`` on the
per-detection curve). :meth:`svd_mm.evaluation.metrics.FROCMetric.calculate`
(default ``curve='reference'``) must give the same sensitivities at every
rate up to the last FP: the paper's rates (0.5, 1, 2, 4), a grid of rates
and every whole FP count. The script prints the speed ratio and the largest
absolute difference per hit criterion, and exits with status 1 when a
difference exceeds 1e-12 (or a rate beyond the last FP does not read the
final sensitivity). It also prints how much higher the ``curve='max'``
reading is.

Usage::

    python benchmarks/froc.py [--num-images 5000] [--num-dets 70000]
        [--criteria iou] [--repeat 3] [--seed 0] [--json OUT]
"""
import argparse
import json
import os
import sys
import time
from typing import List, Optional

import numpy as np

from svd_mm.evaluation.metrics import FROCMetric

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # tests.helpers of this checkout
from tests.helpers import froc_reference  # noqa: E402

FP_RATES = (0.5, 1, 2, 4)
TOLERANCE = 1e-12


def make_detections(num_images: int, num_dets: int, seed: int = 0):
    """Random lesions (0-3 per image, some images without any) and
    detections: jittered copies of the lesions (hits, misses and
    duplicates of a hit) with high scores, exact copies of some of them,
    and random boxes with lower scores, ``num_dets`` in total. Scores are
    float32, as mmdet's, so a few are tied."""
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
        near = min(n, rng.integers(1, 3 * len(gt) + 1)) if len(gt) else 0
        g = gt[rng.integers(len(gt), size=near)] if near else gt[:0]
        size = g[:, 2:] - g[:, :2]
        shift = rng.normal(0, .15, (near, 2)) * size
        centre = (g[:, :2] + g[:, 2:]) / 2 + shift
        half = size * np.exp(rng.normal(0, .2, (near, 2))) / 2
        xy = rng.uniform(0, 450, (n - near, 2))
        boxes = np.vstack([
            np.hstack([centre - half, centre + half]),
            np.hstack([xy, xy + rng.uniform(8, 60, (n - near, 2))])
        ])
        s = np.hstack(
            [rng.uniform(.3, 1., near),
             rng.uniform(0., .8, n - near)])
        if n > 1 and rng.random() < .2:  # an exact copy, a little lower
            boxes[-1], s[-1] = boxes[0], s[0] * .99
        dets.append(boxes)
        scores.append(s.astype(np.float32))
    return dets, scores, gts


def check_rates(num_images: int, num_fp: int) -> np.ndarray:
    """The paper's rates, 100 rates between 0 and the last FP, every whole
    FP count up to 200 and rates beyond the last FP."""
    max_fp = num_fp / num_images
    counts = np.arange(1, min(num_fp, 200) + 1) / num_images
    return np.concatenate([
        FP_RATES,
        np.linspace(0, max_fp, 101)[1:], counts, [max_fp * 1.5 + 1]
    ])


def compare(ref: dict, out: dict) -> dict:
    """Largest difference up to the last FP (where the reference is finite)
    and whether every rate beyond it reads the final sensitivity."""
    sens, ours = ref['sensitivities'], out['sensitivities']
    finite = np.isfinite(sens)
    beyond = np.isnan(sens) & (ref['rates'] > ref['fps_per_image'][-1])
    return dict(
        max_abs_diff=float(np.abs(sens[finite] - ours[finite]).max()),
        compared=int(finite.sum()),
        final_beyond_last_fp=bool(
            np.all(ours[beyond] == ref['sensitivity'][-1])))


def best_time(fn, repeat: int):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=5000)
    parser.add_argument('--num-dets', type=int, default=70000)
    parser.add_argument(
        '--criteria', nargs='+', default=['iou'],
        choices=['iou', 'iobb', 'center'],
        help="hit criteria; the reference's is 'iou' (the others decide "
        'each pair with box_hits in the loop too)')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the rows to this file')
    return parser.parse_args(argv)


def run_criterion(dets, scores, gts, criterion: str, repeat: int) -> dict:
    """Time both implementations on one criterion and compare them."""
    num_fp = FROCMetric.calculate(
        dets, scores, gts, hit_criterion=criterion)['curve_fps'][-1]
    rates = check_rates(len(gts), int(round(num_fp * len(gts))))
    t_loop, ref = best_time(
        lambda: froc_reference(dets, scores, gts, rates, criterion), repeat)
    t_vec, out = best_time(
        lambda: FROCMetric.calculate(dets, scores, gts, rates, criterion),
        repeat)
    ref['rates'] = rates
    high = FROCMetric.calculate(
        dets, scores, gts, FP_RATES, criterion, curve='max')['sensitivities']
    paper = out['sensitivities'][:len(FP_RATES)]
    return dict(
        criterion=criterion,
        sens=paper.tolist(),
        mfroc=float(paper.mean()),
        max_minus_reference=(high - paper).tolist(),
        loop_s=t_loop,
        svd_mm_s=t_vec,
        speed_ratio=t_loop / t_vec,
        **compare(ref, out))


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    dets, scores, gts = make_detections(args.num_images, args.num_dets,
                                        args.seed)
    print(f'{sum(len(d) for d in dets)} detections, '
          f'{sum(len(g) for g in gts)} lesions, {len(gts)} images '
          f'({sum(len(g) == 0 for g in gts)} without lesions)')
    rows = []
    for criterion in args.criteria:
        row = run_criterion(dets, scores, gts, criterion, args.repeat)
        rows.append(row)
        sens = ', '.join(f'{r:g}: {s:.4f}'
                         for r, s in zip(FP_RATES, row['sens']))
        gap = ', '.join(f'{g:+.4f}' for g in row['max_minus_reference'])
        print(f"[{criterion:6s}] sens@FPs/img {{{sens}}} mean "
              f"{row['mfroc']:.4f} | max |diff| vs reference loop "
              f"{row['max_abs_diff']:.1e} over {row['compared']} rates, "
              f"final sensitivity beyond the last FP: "
              f"{row['final_beyond_last_fp']} | loop "
              f"{row['loop_s'] * 1e3:.1f} ms, svd_mm "
              f"{row['svd_mm_s'] * 1e3:.2f} ms, speed ratio "
              f"{row['speed_ratio']:.1f}x | curve='max' minus reference "
              f'at the paper rates: {gap}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)
    if not all(r['max_abs_diff'] <= TOLERANCE and r['final_beyond_last_fp']
               for r in rows):
        print('MISMATCH between svd_mm and the reference loop')
        sys.exit(1)
    return rows


if __name__ == '__main__':
    main()
