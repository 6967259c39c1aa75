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

calculate = FROCMetric.calculate


def _boxes(*boxes):
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _froc_loop(dets, scores, gts, fp_rates, criterion='iou', thr=0.5):
    """Per-detection reference of the documented rule."""
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
    out = calculate(gts, [np.array([0.9, 0.8]), np.zeros(0),
                          np.array([0.7])], gts)
    assert out['sensitivities'].tolist() == [1., 1., 1., 1.]
    assert out['curve_fps'].tolist() == [0.]
    assert out['curve_sens'].tolist() == [1.]
    assert (out['num_images'], out['num_lesions']) == (3, 3)


def _worked_example():
    """4 images, 4 lesions (D is never found); pooled by score:

    d1 .95 img0 hits A -> TP (1)      | d2 .90 img2 (no lesion) -> FP 1
    d3 .85 img0 re-hits A -> neither  | d4 .80 img1 hits C -> TP (2)
    d5 .75 img3 misses D -> FP 2      | d6 .70 img0 hits B -> TP (3)
    d7 .60 img1 -> FP 3               | d9 .40 img2 -> FP 4

    s(f) (lesions found before FP f + 1) = 1, 2, 3, 3, 3 of 4 at
    f / 4 = 0, .25, .5, .75, 1 FPs per image.
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


def test_hand_worked_froc():
    dets, scores, gts = _worked_example()
    out = calculate(dets, scores, gts, fp_rates=(0.125, 0.375, 1, 4))
    assert out['curve_fps'].tolist() == [0, .25, .5, .75, 1.]
    assert out['curve_sens'].tolist() == [.25, .5, .75, .75, .75]
    # 0.125 halfway between .25 and .5; 0.375 between .5 and .75; the last
    # FP is at 1 FP/image, beyond it the final sensitivity holds
    assert out['sensitivities'].tolist() == [0.375, 0.625, 0.75, 0.75]
    ref = _froc_loop(dets, scores, gts, (0.125, 0.375, 1, 4))
    assert out['sensitivities'].tolist() == ref.tolist()


def test_duplicates_are_neither_tp_nor_fp():
    gts = [_boxes([0, 0, 10, 10]), _boxes()]
    dets = [_boxes([0, 0, 10, 10], [0, 0, 10, 10.5], [0, 0, 10.5, 10]),
            _boxes([0, 0, 5, 5])]
    out = calculate(dets, [np.array([.9, .8, .7]), np.array([.6])], gts,
                    fp_rates=(0.5, 1))
    # one FP only (image 1), found before it: the lesion
    assert out['curve_fps'].tolist() == [0., 0.5]
    assert out['curve_sens'].tolist() == [1., 1.]


def test_images_without_lesions_count():
    # the same detections, with 3 extra lesion-free images: FPs per image
    # shrink
    gts = [_boxes([0, 0, 10, 10])]
    dets = [_boxes([50, 50, 60, 60], [0, 0, 10, 10])]
    scores = [np.array([.9, .8])]
    one = calculate(dets, scores, gts, fp_rates=(0.25, 1))
    assert one['curve_fps'].tolist() == [0., 1.]
    assert one['curve_sens'].tolist() == [0., 1.]
    assert one['sensitivities'].tolist() == [0.25, 1.]
    four = calculate(dets + [_boxes()] * 3, scores + [np.zeros(0)] * 3,
                     gts + [_boxes()] * 3, fp_rates=(0.25, 1))
    assert four['curve_fps'].tolist() == [0., 0.25]
    assert four['sensitivities'].tolist() == [1., 1.]


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
    plain = calculate(dets, scores, gts, fp_rates=(1, 2))
    assert plain['curve_sens'].tolist() == [0., 0., 1.]
    ignored = calculate(dets, scores, gts, fp_rates=(1, 2),
                        ignored_bboxes=[_boxes([50, 50, 60, 60])])
    # the first detection hits an ignored box: only one FP is left
    assert ignored['curve_fps'].tolist() == [0., 1.]
    assert ignored['curve_sens'].tolist() == [0., 1.]
    assert ignored['sensitivities'].tolist() == [1., 1.]


def test_no_detections_and_ties():
    gts = [_boxes([0, 0, 10, 10])]
    none = calculate([_boxes()], [np.zeros(0)], gts)
    assert none['sensitivities'].tolist() == [0., 0., 0., 0.]
    # equal scores keep the input order: the FP first, then the TP
    tie = calculate([_boxes([50, 50, 60, 60], [0, 0, 10, 10])],
                    [np.array([.5, .5])], gts, fp_rates=(0.5, ))
    assert tie['curve_sens'].tolist() == [0., 1.]
    assert tie['sensitivities'].tolist() == [0.5]
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
    out = calculate(dets, scores, gts, rates, criterion)
    ref = _froc_loop(dets, scores, gts, rates, criterion)
    np.testing.assert_allclose(out['sensitivities'], ref, rtol=0,
                               atol=1e-12)
    assert 0 < out['sensitivities'][-1] < 1


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


def test_evaluator_keys_and_plot(tmp_path):
    dets, scores, gts = _worked_example()
    samples = [
        _data_sample(g, d, s, img_id=i)
        for i, (g, d, s) in enumerate(zip(gts, dets, scores))
    ]
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
    assert results['froc/sens@0.125'] == 0.375
    assert results['froc/sens@0.375'] == 0.625
    assert results['froc/mFROC'] == 0.625
    # VOC area AP: precision 1 up to recall .25, then .5 up to .75
    assert results['froc/mAP'] == pytest.approx(0.5)
    png = cv2.imread(str(tmp_path / 'plots' / 'froc_curve.png'))
    assert png.shape == (450, 600, 3)
    points = json.loads((tmp_path / 'plots' / 'froc_curve.json').read_text())
    assert points['sensitivity'] == [.25, .5, .75, .75, .75]
    assert points['num_images'] == 4 and points['num_lesions'] == 4


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
