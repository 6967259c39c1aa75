import json

import cv2
import mmdet  # noqa: F401
import numpy as np
import pytest
import torch
from mmdet.registry import METRICS as DET_METRICS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.evaluator import Evaluator  # noqa: E402
from mmengine.registry import METRICS  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from svd_mm.evaluation.metrics import FROCMetric  # noqa: E402
from svd_mm.evaluation.metrics.froc_metric import box_hits  # noqa: E402
from svd_mm.visualization import read_froc_curve  # noqa: E402
from tests.helpers import froc_reference  # noqa: E402

calculate = FROCMetric.calculate


def _boxes(*boxes):
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _froc_loop(dets, scores, gts, fp_rates, criterion='iou', thr=0.5):
    """Per-detection loop of the ``curve='max'`` reading: the best
    sensitivity with f FPs, interpolated."""
    pooled = sorted(((float(s), i, j) for i, ss in enumerate(scores)
                     for j, s in enumerate(ss)),
                    key=lambda t: -t[0])
    found = [np.zeros(len(g), bool) for g in gts]
    s_before_fp = []
    for _, i, j in pooled:
        hits = box_hits(dets[i][j][None], gts[i], criterion, thr)
        found[i] |= hits
        if not hits.any():
            s_before_fp.append(sum(f.sum() for f in found))
    s_before_fp.append(sum(f.sum() for f in found))
    num_lesions = sum(len(g) for g in gts)
    xs = np.arange(len(s_before_fp)) / len(gts)
    return np.interp(fp_rates, xs, np.array(s_before_fp) / num_lesions)


def test_froc_metric_registry():
    assert DET_METRICS.get('FROCMetric') is FROCMetric
    # mmdet-only: it reads mmdet data samples
    assert 'FROCMetric' not in METRICS.module_dict
    assert FROCMetric.default_prefix == 'froc'


# [hit_criterion, hit_thr, detection, lesion, hit]
HIT_CASES = [
    ['iou', 0.5, [0, 0, 10, 10], [0, 0, 10, 20], True],  # IoU exactly 0.5
    ['iou', 0.5, [0, 0, 10, 10], [0, 0, 10, 21], False],  # IoU 0.476
    ['iou', 0.5, [0, 0, 10, 10], [20, 20, 30, 30], False],  # disjoint
    ['iobb', 0.5, [0, 0, 10, 10], [0, 0, 10, 40], True],  # IoBB 1.0
    ['iobb', 0.5, [0, 0, 10, 10], [5, 0, 30, 30], True],  # IoBB exactly 0.5
    ['iobb', 0.5, [0, 0, 10, 10], [6, 0, 30, 30], False],  # IoBB 0.4
    ['center', 0.5, [-10, -10, 50, 50], [0, 0, 20, 20], True],  # on border
    ['center', 0.5, [0, 0, 42, 42], [0, 0, 20, 20], False],  # (21, 21)
    ['iou', 0.5, [5, 5, 5, 9], [0, 0, 10, 10], False],  # zero area
    ['iobb', 0.5, [5, 5, 5, 9], [0, 0, 10, 10], False],  # zero area
]


@pytest.mark.parametrize('criterion,thr,det,gt,hit', HIT_CASES)
def test_box_hits(criterion, thr, det, gt, hit):
    out = box_hits(_boxes(det), _boxes(gt), criterion, thr)
    assert out.shape == (1, )
    assert bool(out[0]) is hit


def test_box_hits_broadcasts():
    dets = _boxes([0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 11])
    gts = _boxes([0, 0, 10, 10], [20, 20, 30, 31])
    out = box_hits(dets[:, None], gts[None], 'iou', 0.5)
    assert out.shape == (3, 2)
    assert out.tolist() == [[True, False], [False, True], [True, False]]
    # a bad criterion and a bad box shape
    with pytest.raises(ValueError, match='hit_criterion'):
        box_hits(dets, dets, 'dice')
    with pytest.raises(ValueError, match=r'shape \(\.\.\., 4\)'):
        box_hits(dets[:, :3], gts)


def test_perfect_detector():
    gts = [_boxes([10, 10, 50, 40], [60, 60, 90, 120]),
           _boxes(),  # an image without lesions and without detections
           _boxes([0, 0, 30, 30])]
    for curve in ('reference', 'max'):
        out = calculate(gts, [np.array([0.9, 0.8]), np.zeros(0),
                              np.array([0.7])], gts, curve=curve)
        assert out['sensitivities'].tolist() == [1., 1., 1., 1.]
        # no FP: one point
        assert out['curve_fps'].tolist() == [0.]
        assert out['curve_sens'].tolist() == [1.]
        assert (out['num_images'], out['num_lesions']) == (3, 3)


def _worked_example():
    """4 images, 4 lesions (D is never found); pooled by score:

    d1 .95 img0 hits A -> TP (1)      | d2 .90 img2 (no lesion) -> FP 1
    d3 .85 img0 re-hits A -> neither  | d4 .80 img1 hits C -> TP (2)
    d5 .75 img3 misses D -> FP 2      | d6 .70 img0 hits B -> TP (3)
    d7 .60 img1 -> FP 3               | d9 .40 img2 -> FP 4

    Lesions found before FP c (= up to FP c): b_1..b_4 = 1, 2, 3, 3 of 4,
    and all detections find 3 of 4. The reference reading at r FPs per
    image is b_c with c = ceil(4 r); the 'max' reading interpolates
    (f / 4, b_f+1) for f = 0..4.
    """
    gts = [
        _boxes([0, 0, 10, 10], [20, 20, 30, 30]),  # A, B
        _boxes([0, 0, 10, 10]),  # C
        _boxes(),  # no lesion
        _boxes([50, 50, 70, 70]),  # D
    ]
    # per image, deliberately not in score order
    dets = [
        _boxes([20, 20, 30, 30], [0, 0, 10, 10], [0, 0, 10, 11]),  # d6 d1 d3
        _boxes([40, 40, 50, 50], [0, 0, 10, 10]),  # d7 d4
        _boxes([5, 5, 9, 9], [0, 0, 10, 10]),  # d9 d2
        _boxes([0, 0, 5, 5]),  # d5
    ]
    scores = [np.array([.70, .95, .85]), np.array([.60, .80]),
              np.array([.40, .90]), np.array([.75])]
    return dets, scores, gts


RATES = (0.125, 0.25, 0.375, 0.5, 0.75, 1, 4)


def test_hand_worked_froc_reference_reading():
    dets, scores, gts = _worked_example()
    out = calculate(dets, scores, gts, fp_rates=RATES)
    # the step curve: (0, b_1), then at c / 4 the points b_c and b_c+1
    assert out['curve_fps'].tolist() == [
        0, .25, .25, .5, .5, .75, .75, 1., 1.
    ]
    assert out['curve_sens'].tolist() == [
        .25, .25, .5, .5, .75, .75, .75, .75, .75
    ]
    # 0.125 and 0.25: before the 1st FP (d2), so only A; 0.375 and 0.5:
    # before the 2nd FP (d5), A and C; 0.75 and 1: A, C and B; beyond the
    # last FP (1 FP/image) the final sensitivity
    assert out['sensitivities'].tolist() == [
        .25, .25, .5, .5, .75, .75, .75
    ]
    ref = froc_reference(dets, scores, gts, RATES)
    # the reference reads nothing beyond the last FP
    assert ref['sensitivities'][:-1].tolist() == \
        out['sensitivities'][:-1].tolist()
    assert np.isnan(ref['sensitivities'][-1])
    assert read_froc_curve(out['curve_fps'], out['curve_sens'],
                           RATES).tolist() == out['sensitivities'].tolist()


def test_hand_worked_froc_max_reading():
    dets, scores, gts = _worked_example()
    out = calculate(dets, scores, gts, fp_rates=RATES, curve='max')
    assert out['curve_fps'].tolist() == [0, .25, .5, .75, 1.]
    assert out['curve_sens'].tolist() == [.25, .5, .75, .75, .75]
    # 0.125 halfway between .25 and .5; 0.375 between .5 and .75; the last
    # FP is at 1 FP/image, beyond it the final sensitivity holds
    assert out['sensitivities'].tolist() == [
        .375, .5, .625, .75, .75, .75, .75
    ]
    ref = _froc_loop(dets, scores, gts, RATES)
    assert out['sensitivities'].tolist() == ref.tolist()
    assert read_froc_curve(out['curve_fps'], out['curve_sens'],
                           RATES).tolist() == out['sensitivities'].tolist()


def test_lesion_found_after_the_fp_is_not_counted_at_it():
    """TP, FP, TP, FP on one image with two lesions: at 1 FP per image the
    reference reads the first FP's detection (one lesion found), 'max'
    the best with one FP (both)."""
    gts = [_boxes([0, 0, 10, 10], [20, 20, 30, 30])]
    dets = [_boxes([0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30],
                   [70, 70, 80, 80])]
    scores = [np.array([.9, .8, .7, .6])]
    rates = (0.5, 1, 1.5, 2, 4)
    ref = calculate(dets, scores, gts, rates)
    assert ref['sensitivities'].tolist() == [.5, .5, 1., 1., 1.]
    high = calculate(dets, scores, gts, rates, curve='max')
    assert high['sensitivities'].tolist() == [.75, 1., 1., 1., 1.]
    loop = froc_reference(dets, scores, gts, rates)['sensitivities']
    assert loop[:4].tolist() == [.5, .5, 1., 1.] and np.isnan(loop[4])


def test_reading_where_interp1d_is_not_finite():
    """FP then TP first: interp1d gives -inf / NaN up to 1 FP per image (its
    first two points share x); svd_mm reads the sensitivity before the
    first FP, 0, as just after."""
    gts = [_boxes([0, 0, 10, 10]), _boxes(), _boxes(), _boxes()]
    dets = [_boxes([0, 0, 10, 10]), _boxes([0, 0, 5, 5]),
            _boxes([0, 0, 5, 5]), _boxes()]
    scores = [np.array([.8]), np.array([.9]), np.array([.7]), np.zeros(0)]
    rates = (0, 0.1, 0.25, 0.3, 0.5)
    loop = froc_reference(dets, scores, gts, rates)['sensitivities']
    assert loop[:2].tolist() == [-np.inf, -np.inf]
    assert np.isnan(loop[2]) and loop[3:].tolist() == [1., 1.]
    out = calculate(dets, scores, gts, rates)
    assert out['sensitivities'].tolist() == [0., 0., 0., 1., 1.]


def test_duplicates_are_neither_tp_nor_fp():
    gts = [_boxes([0, 0, 10, 10]), _boxes()]
    dets = [_boxes([0, 0, 10, 10], [0, 0, 10, 10.5], [0, 0, 10.5, 10]),
            _boxes([0, 0, 5, 5])]
    scores = [np.array([.9, .8, .7]), np.array([.6])]
    out = calculate(dets, scores, gts, fp_rates=(0.5, 1))
    # one FP only (image 1), found before it: the lesion
    assert out['curve_fps'].tolist() == [0., 0.5, 0.5]
    assert out['curve_sens'].tolist() == [1., 1., 1.]
    assert out['sensitivities'].tolist() == [1., 1.]
    high = calculate(dets, scores, gts, fp_rates=(0.5, 1), curve='max')
    assert high['curve_fps'].tolist() == [0., 0.5]
    assert high['curve_sens'].tolist() == [1., 1.]


def test_images_without_lesions_count():
    # the same detections, with 3 extra lesion-free images: FPs per image
    # shrink
    gts = [_boxes([0, 0, 10, 10])]
    dets = [_boxes([50, 50, 60, 60], [0, 0, 10, 10])]
    scores = [np.array([.9, .8])]
    one = calculate(dets, scores, gts, fp_rates=(0.25, 1, 2))
    assert one['curve_fps'].tolist() == [0., 1., 1.]
    assert one['curve_sens'].tolist() == [0., 0., 1.]
    # up to the only FP (1 FP/image) nothing is found before it; beyond
    # it, the final sensitivity
    assert one['sensitivities'].tolist() == [0., 0., 1.]
    four = calculate(dets + [_boxes()] * 3, scores + [np.zeros(0)] * 3,
                     gts + [_boxes()] * 3, fp_rates=(0.25, 1, 2))
    assert four['curve_fps'].tolist() == [0., 0.25, 0.25]
    assert four['sensitivities'].tolist() == [0., 1., 1.]
    # 'max': (0, 0) -> (1, 1), and (0, 0) -> (.25, 1) with 4 images
    high = calculate(dets, scores, gts, fp_rates=(0.25, 1), curve='max')
    assert high['curve_fps'].tolist() == [0., 1.]
    assert high['curve_sens'].tolist() == [0., 1.]
    assert high['sensitivities'].tolist() == [0.25, 1.]


def test_one_detection_finds_two_overlapping_lesions():
    gts = [_boxes([0, 0, 10, 10], [0, 0, 10, 11])]
    out = calculate([_boxes([0, 0, 10, 10])], [np.array([.5])], gts)
    assert out['num_lesions'] == 2
    assert out['sensitivities'].tolist() == [1., 1., 1., 1.]


# [hit_criterion, sensitivities]: image 0 has a detection whose IoU is .25
# but IoBB 1; image 1 one whose only hit is its centre on the lesion border
CRITERIA_CASES = [
    ['iou', [0., 0.]],
    ['iobb', [0.5, 0.5]],
    ['center', [1., 1.]],
]


@pytest.mark.parametrize('criterion,expected', CRITERIA_CASES)
def test_hit_criteria(criterion, expected):
    gts = [_boxes([0, 0, 20, 20]), _boxes([0, 0, 20, 20])]
    dets = [_boxes([0, 0, 10, 10]), _boxes([-10, -10, 50, 50])]
    out = calculate(dets, [np.array([.9]), np.array([.9])], gts,
                    fp_rates=(0.5, 1), hit_criterion=criterion)
    assert out['sensitivities'].tolist() == expected


def test_ignored_boxes_are_neither():
    gts = [_boxes([0, 0, 10, 10])]
    dets = [_boxes([50, 50, 60, 60], [80, 80, 90, 90], [0, 0, 10, 10])]
    scores = [np.array([.9, .8, .7])]
    plain = calculate(dets, scores, gts, fp_rates=(1, 2, 3), curve='max')
    assert plain['curve_sens'].tolist() == [0., 0., 1.]
    ignored = calculate(dets, scores, gts, fp_rates=(1, 2, 3), curve='max',
                        ignored_bboxes=[_boxes([50, 50, 60, 60])])
    # the first detection hits an ignored box: only one FP is left
    assert ignored['curve_fps'].tolist() == [0., 1.]
    assert ignored['curve_sens'].tolist() == [0., 1.]
    assert ignored['sensitivities'].tolist() == [1., 1., 1.]
    # the reference reading: 0 up to the last FP, then the final 1
    plain = calculate(dets, scores, gts, fp_rates=(1, 2, 3))
    assert plain['sensitivities'].tolist() == [0., 0., 1.]
    ignored = calculate(dets, scores, gts, fp_rates=(1, 2, 3),
                        ignored_bboxes=[_boxes([50, 50, 60, 60])])
    assert ignored['sensitivities'].tolist() == [0., 1., 1.]


def test_no_detections_and_ties():
    gts = [_boxes([0, 0, 10, 10])]
    none = calculate([_boxes()], [np.zeros(0)], gts)
    assert none['sensitivities'].tolist() == [0., 0., 0., 0.]
    # equal scores keep the input order: the FP first, then the TP
    tie_dets = [_boxes([50, 50, 60, 60], [0, 0, 10, 10])]
    tie = calculate(tie_dets, [np.array([.5, .5])], gts, fp_rates=(0.5, ))
    assert tie['curve_sens'].tolist() == [0., 0., 1.]
    assert tie['sensitivities'].tolist() == [0.]
    tie = calculate(tie_dets, [np.array([.5, .5])], gts, fp_rates=(0.5, ),
                    curve='max')
    assert tie['curve_sens'].tolist() == [0., 1.]
    assert tie['sensitivities'].tolist() == [0.5]
    # the TP first: found before the FP
    tie = calculate([_boxes([0, 0, 10, 10], [50, 50, 60, 60])],
                    [np.array([.5, .5])], gts, fp_rates=(0.5, 1))
    assert tie['sensitivities'].tolist() == [1., 1.]
    # lists and empty np.array([]) entries are accepted
    lists = calculate([[[0, 0, 10, 10]], np.array([])],
                      [[0.9], np.array([])], [[[0, 0, 10, 10]], []])
    assert lists['sensitivities'].tolist() == [1., 1., 1., 1.]


@pytest.mark.parametrize('criterion', ['iou', 'iobb', 'center'])
def test_matches_per_detection_loop(criterion):
    rng = np.random.default_rng(3)
    gts, dets, scores = [], [], []
    for _ in range(40):
        xy = rng.uniform(0, 80, (rng.integers(0, 4), 2))
        gts.append(np.hstack([xy, xy + rng.uniform(5, 20, xy.shape)]))
        n = rng.integers(0, 8)
        near = gts[-1][rng.integers(0, max(len(gts[-1]), 1), n)] \
            if len(gts[-1]) else rng.uniform(0, 80, (n, 4))
        jitter = rng.normal(0, 3, (n, 4))
        boxes = np.sort((near + jitter).reshape(n, 2, 2), axis=1)
        dets.append(boxes.reshape(n, 4))
        # rounded scores make ties frequent
        scores.append(np.round(rng.uniform(0, 1, n), 1))
    rates = (0.125, 0.5, 1, 2, 4, 8)
    out = calculate(dets, scores, gts, rates, criterion, curve='max')
    ref = _froc_loop(dets, scores, gts, rates, criterion)
    np.testing.assert_allclose(out['sensitivities'], ref, rtol=0,
                               atol=1e-12)
    assert 0 < out['sensitivities'][-1] < 1


def _random_case(rng, num_images, ties):
    """0-2 lesions per image; per image 0-5 detections: jittered copies of
    its lesions (hits, misses, re-hits), exact duplicates of a detection
    and random boxes (FPs). With ``ties`` scores have one decimal."""
    gts, dets, scores = [], [], []
    for _ in range(num_images):
        xy = rng.uniform(0, 200, (rng.choice(3, p=[.35, .4, .25]), 2))
        gts.append(np.hstack([xy, xy + rng.uniform(5, 40, xy.shape)]))
        n = int(rng.integers(0, 6))
        near = int(rng.integers(0, n + 1)) if len(xy) else 0
        g = gts[-1][rng.integers(0, max(len(xy), 1), near)]
        jittered = g + rng.normal(0, 3, g.shape)
        xy = rng.uniform(0, 200, (n - near, 2))
        boxes = np.vstack([jittered,
                           np.hstack([xy, xy + rng.uniform(5, 40, xy.shape)])])
        score = rng.uniform(0, 1, n)
        if n >= 2 and rng.random() < .3:  # an exact duplicate
            boxes[1] = boxes[0]
            score[1] = score[0] if rng.random() < .5 else score[1]
        dets.append(np.sort(boxes.reshape(n, 2, 2), axis=1).reshape(n, 4))
        scores.append(np.round(score, 1) if ties else score)
    return dets, scores, gts


def _check_against_reference(dets, scores, gts, criterion='iou'):
    """Compare the default reading with the plain-loop transcription of the
    reference at many rates; return the number of finite rates compared."""
    num_images = len(gts)
    out = calculate(dets, scores, gts, (1., ), criterion)
    num_fp = int(round(out['curve_fps'][-1] * num_images))
    rates = np.concatenate([
        (0, .05, .1, .125, 1 / 3, .5, .75, 1, 1.5, 2, 3, 4, 8),
        np.arange(min(num_fp, 60) + 1) / num_images,  # whole FP counts
        np.linspace(0, num_fp / num_images, 37)
    ])
    ref = froc_reference(dets, scores, gts, rates, criterion)
    out = calculate(dets, scores, gts, rates, criterion)
    sens, ours = ref['sensitivities'], out['sensitivities']
    x = ref['fps_per_image']
    up_to_last = rates <= x[-1]
    finite = np.isfinite(sens)
    np.testing.assert_allclose(ours[finite], sens[finite], rtol=0,
                               atol=1e-12)
    # interp1d is not finite only up to its first point when the first two
    # detections share their FP count; svd_mm reads b_1 there
    odd = up_to_last & ~finite
    assert np.all(rates[odd] <= x[0]) and (not odd.any() or x[0] == x[1])
    assert np.all(ours[odd] == read_froc_curve(
        out['curve_fps'], out['curve_sens'], 1e-9 / num_images))
    # beyond the last FP: the final sensitivity
    assert np.all(np.isnan(sens[~up_to_last]))
    assert np.all(ours[~up_to_last] == ref['sensitivity'][-1])
    # the 'max' reading is never lower
    high = calculate(dets, scores, gts, rates, criterion, curve='max')
    assert np.all(high['sensitivities'] >= ours)
    return int(finite.sum())


# [num_images, seed, ties]
RANDOM_CASES = [[5, s, s % 2 == 1] for s in range(6)] + [
    [20, 0, False], [20, 1, True], [200, 2, False], [200, 3, True],
    [1000, 4, False], [1000, 5, True]
]


@pytest.mark.parametrize('num_images,seed,ties', RANDOM_CASES)
def test_matches_reference_transcription(num_images, seed, ties):
    rng = np.random.default_rng(seed)
    dets, scores, gts = _random_case(rng, num_images, ties)
    assert sum(len(g) for g in gts) > 0 and sum(len(d) for d in dets) >= 2
    assert _check_against_reference(dets, scores, gts) >= 15


@pytest.mark.parametrize('criterion', ['iobb', 'center'])
def test_matches_reference_transcription_other_criteria(criterion):
    dets, scores, gts = _random_case(np.random.default_rng(7), 50, True)
    assert _check_against_reference(dets, scores, gts, criterion) >= 15


def test_random_cases_separate_the_readings():
    """On 5 images the 'max' reading is far above the reference one."""
    gaps = []
    for seed in range(20):
        dets, scores, gts = _random_case(np.random.default_rng(seed), 5,
                                         False)
        if not sum(len(g) for g in gts):
            continue
        ref = calculate(dets, scores, gts, (0.5, 1))['sensitivities']
        high = calculate(dets, scores, gts, (0.5, 1),
                         curve='max')['sensitivities']
        gaps.append((high - ref).max())
    assert max(gaps) >= 0.2 and min(gaps) >= 0


def test_calculate_bad_inputs():
    gts = [_boxes([0, 0, 10, 10])]
    # no lesion in any image
    with pytest.raises(ValueError, match='at least one lesion'):
        calculate([_boxes()], [np.zeros(0)], [_boxes()])
    # no image
    with pytest.raises(ValueError, match='at least one image'):
        calculate([], [], [])
    # one list shorter than the others
    with pytest.raises(ValueError, match='one entry per image'):
        calculate([_boxes(), _boxes()], [np.zeros(0)], gts)
    # boxes and scores of an image disagree
    with pytest.raises(ValueError, match='Image 0 has 1 detected boxes but '
                       '2 scores'):
        calculate([_boxes([0, 0, 1, 1])], [np.array([.1, .2])], gts)
    # boxes with 5 columns
    with pytest.raises(ValueError, match=r'det_bboxes\[0\] must have shape'):
        calculate([np.zeros((1, 5))], [np.array([.1])], gts)


def _data_sample(gt, det, scores, ignored=None, img_id=0):
    sample = DetDataSample(metainfo=dict(img_id=img_id, img_path=f'{img_id}'))
    sample.gt_instances = InstanceData(
        bboxes=torch.as_tensor(gt, dtype=torch.float32).reshape(-1, 4),
        labels=torch.zeros(len(gt), dtype=torch.long))
    sample.ignored_instances = InstanceData(
        bboxes=torch.as_tensor(
            ignored if ignored is not None else np.zeros((0, 4)),
            dtype=torch.float32).reshape(-1, 4))
    sample.pred_instances = InstanceData(
        bboxes=torch.as_tensor(det, dtype=torch.float32).reshape(-1, 4),
        scores=torch.as_tensor(scores, dtype=torch.float32),
        labels=torch.zeros(len(scores), dtype=torch.long))
    return sample


def _worked_samples():
    """The data samples of :func:`_worked_example`."""
    dets, scores, gts = _worked_example()
    return [
        _data_sample(g, d, s, img_id=i)
        for i, (g, d, s) in enumerate(zip(gts, dets, scores))
    ]


def test_evaluator_keys_and_plot(tmp_path):
    samples = _worked_samples()
    metric = DET_METRICS.build(
        dict(
            type='FROCMetric',
            fp_rates=(0.125, 0.375, 1, 4),
            with_map=True,
            plot_dir=str(tmp_path / 'plots')))
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=('lesion', ))
    evaluator.process(samples[:2])  # two batches
    evaluator.process(samples[2:])
    results = evaluator.evaluate(len(samples))
    assert list(results) == [
        'froc/mFROC', 'froc/sens@0.125', 'froc/sens@0.375', 'froc/sens@1',
        'froc/sens@4', 'froc/mAP'
    ]
    # the reference reading, see test_hand_worked_froc_reference_reading
    assert results['froc/sens@0.125'] == 0.25
    assert results['froc/sens@0.375'] == 0.5
    assert results['froc/sens@1'] == 0.75
    assert results['froc/mFROC'] == 0.5625
    # VOC area AP: precision 1 up to recall .25, then .5 up to .75
    assert results['froc/mAP'] == pytest.approx(0.5)
    png = cv2.imread(str(tmp_path / 'plots' / 'froc_curve.png'))
    assert png.shape == (450, 600, 3)
    points = json.loads((tmp_path / 'plots' / 'froc_curve.json').read_text())
    assert points['sensitivity'] == [
        .25, .25, .5, .5, .75, .75, .75, .75, .75
    ]
    assert points['fps_per_image'] == [0, .25, .25, .5, .5, .75, .75, 1, 1]
    assert points['sensitivities'] == [.25, .5, .75, .75]
    assert points['curve'] == 'reference'
    assert points['num_images'] == 4 and points['num_lesions'] == 4


def test_evaluator_max_reading():
    samples = _worked_samples()
    evaluator = Evaluator(
        FROCMetric(fp_rates=(0.125, 0.375, 1, 4), curve='max'))
    evaluator.process(samples)
    results = evaluator.evaluate(len(samples))
    assert results['froc/sens@0.125'] == 0.375
    assert results['froc/sens@0.375'] == 0.625
    assert results['froc/mFROC'] == 0.625


def test_process_reads_ignored_instances():
    samples = [
        _data_sample([[0, 0, 10, 10]], [[50, 50, 60, 60], [0, 0, 10, 10]],
                     [.9, .8], ignored=[[50, 50, 60, 60]])
    ]
    evaluator = Evaluator(FROCMetric(fp_rates=(0.5, )))
    evaluator.process(samples)
    assert evaluator.evaluate(1) == {'froc/mFROC': 1.0, 'froc/sens@0.5': 1.0}


def test_process_needs_gt_instances():
    sample = _data_sample([[0, 0, 10, 10]], [[0, 0, 10, 10]], [.9])
    del sample.gt_instances
    metric = FROCMetric()
    # the test pipeline did not load the annotations
    with pytest.raises(KeyError, match='LoadAnnotations'):
        metric.process({}, [sample.to_dict()])


def test_froc_metric_bad_arguments():
    # negative FP rate
    with pytest.raises(ValueError, match='fp_rates'):
        FROCMetric(fp_rates=(-1, 1))
    # empty FP rates
    with pytest.raises(ValueError, match='fp_rates'):
        FROCMetric(fp_rates=())
    # unknown criterion
    with pytest.raises(ValueError, match='hit_criterion'):
        FROCMetric(hit_criterion='dice')
    # IoU threshold out of (0, 1]
    with pytest.raises(ValueError, match='hit_thr'):
        FROCMetric(hit_thr=1.5)
    # unknown curve reading
    with pytest.raises(ValueError, match='curve'):
        FROCMetric(curve='interp')
    with pytest.raises(ValueError, match='curve'):
        calculate([_boxes()], [np.zeros(0)], [_boxes([0, 0, 1, 1])],
                  curve='interp')
