import numpy as np
import pytest
import torch
from mmengine.registry import METRICS
from mmseg.structures import SegDataSample

from svd_mm.evaluation.metrics import DiceMetric3D
from svd_mm.structures import VoxelData


def _sample(pred, gt):
    return SegDataSample(
        pred_sem_seg=VoxelData(data=torch.from_numpy(pred)),
        gt_sem_seg=VoxelData(data=torch.from_numpy(gt))).to_dict()


def _numpy_dice(preds, gts, num_classes, ignore_index=255):
    """Per-case and global Dice per foreground class, written out."""
    per_case = np.zeros((len(preds), num_classes - 1))
    inter = np.zeros(num_classes - 1)
    total = np.zeros(num_classes - 1)
    for i, (pred, gt) in enumerate(zip(preds, gts)):
        valid = gt != ignore_index
        for k in range(1, num_classes):
            p = (pred == k) & valid
            g = gt == k
            denom = p.sum() + g.sum()
            per_case[i,
                     k - 1] = 1.0 if denom == 0 else 2 * (p & g).sum() / denom
            inter[k - 1] += (p & g).sum()
            total[k - 1] += denom
    return per_case.mean(0), 2 * inter / total


@pytest.mark.parametrize('num_classes', [2, 3])
def test_dice_matches_numpy(num_classes):
    rng = np.random.default_rng(0)
    shapes = [(4, 6, 8), (3, 5, 7), (5, 4, 6)]
    preds, gts = [], []
    for shape in shapes:
        gt = rng.integers(0, num_classes, (1, ) + shape)
        pred = np.where(
            rng.random(gt.shape) < 0.7, gt,
            rng.integers(0, num_classes, gt.shape))
        gt[0, 0, 0] = 255  # ignored voxels
        preds.append(pred)
        gts.append(gt)
    # a case with neither prediction nor label of any foreground class
    preds.append(np.zeros((1, 2, 3, 4), dtype=np.int64))
    gts.append(np.zeros((1, 2, 3, 4), dtype=np.int64))

    metric = DiceMetric3D(num_classes=num_classes)
    classes = ['background', 'liver', 'tumor'][:num_classes]
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, [_sample(p, g) for p, g in zip(preds[:2], gts[:2])])
    metric.process({}, [_sample(p, g) for p, g in zip(preds[2:], gts[2:])])
    results = metric.compute_metrics(metric.results)

    per_case, global_dice = _numpy_dice([p[0] for p in preds],
                                        [g[0] for g in gts], num_classes)
    assert results['dice_per_case'] == pytest.approx(per_case.mean())
    assert results['dice_global'] == pytest.approx(global_dice.mean())
    if num_classes == 2:
        assert set(results) == {'dice_per_case', 'dice_global'}
    else:
        assert results['dice_per_case/tumor'] == pytest.approx(per_case[1])
        assert results['dice_global/liver'] == pytest.approx(global_dice[0])
        assert len(results) == 6
    # the empty case counts as 1.0
    assert per_case.mean() > _numpy_dice([p[0] for p in preds[:3]],
                                         [g[0] for g in gts[:3]],
                                         num_classes)[0].mean()


def test_process_stores_small_cpu_counts():
    metric = DiceMetric3D()
    pred = np.zeros((1, 4, 4, 4), dtype=np.int64)
    pred[0, :2] = 1
    gt = np.zeros_like(pred)
    gt[0, 1:3] = 1
    metric.process({}, [_sample(pred, gt)])
    result = metric.results[0]
    assert set(result) == {'intersection', 'pred_area', 'gt_area'}
    assert result['intersection'].tolist() == [16]
    assert result['pred_area'].tolist() == [32]
    assert result['gt_area'].tolist() == [32]
    assert metric.compute_metrics(metric.results) == dict(
        dice_per_case=0.5, dice_global=0.5)


def test_evaluate_through_registry():
    metric = METRICS.build(dict(type='DiceMetric3D', prefix='lits'))
    metric.dataset_meta = dict(classes=('background', 'nodule'))
    gt = np.ones((1, 2, 2, 2), dtype=np.int64)
    metric.process({}, [_sample(gt, gt)])
    assert metric.evaluate(1) == {
        'lits/dice_per_case': 1.0,
        'lits/dice_global': 1.0
    }


def test_bad_inputs():
    # num_classes counts the background
    with pytest.raises(ValueError, match='num_classes'):
        DiceMetric3D(num_classes=1)
    metric = DiceMetric3D()
    # prediction not resized to the label
    with pytest.raises(
            ValueError,
            match=r'\(1, 2, 3, 4\) and gt_sem_seg '
            r'of shape \(1, 2, 3, 5\)'):
        metric.process({}, [
            _sample(
                np.zeros(
                    (1, 2, 3, 4), np.int64), np.zeros((1, 2, 3, 5), np.int64))
        ])
    # no cases
    with pytest.raises(ValueError, match='no cases'):
        metric.compute_metrics([])
    # mismatched counts
    with pytest.raises(ValueError, match=r'\(num_cases, num_foreground\)'):
        DiceMetric3D.calculate(
            np.zeros((2, 1)), np.zeros((2, 2)), np.zeros((2, 2)))
