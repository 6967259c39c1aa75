import importlib
import logging
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.registry import METRICS, DefaultScope
from mmpretrain.structures import DataSample
from sklearn.metrics import (accuracy_score, f1_score, precision_score,
                             recall_score, roc_auc_score)

from svd_mm.evaluation import BinaryClsMetric


def _sklearn_metrics(probs, labels, thr=0.5):
    pred = (np.asarray(probs) >= thr).astype(int)
    return dict(
        auc=roc_auc_score(labels, probs),
        accuracy=accuracy_score(labels, pred),
        sensitivity=recall_score(labels, pred, zero_division=0),
        specificity=recall_score(labels, pred, pos_label=0, zero_division=0),
        precision=precision_score(labels, pred, zero_division=0),
        f1=f1_score(labels, pred, zero_division=0))


# [name, scores, labels]
CASES = [
    ['random', np.random.RandomState(0).rand(257),
     np.random.RandomState(1).randint(0, 2, 257)],
    # scores rounded to 1 decimal: many ties across the two classes
    ['ties', np.random.RandomState(2).rand(300).round(1),
     np.random.RandomState(3).randint(0, 2, 300)],
    ['separated', [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 0, 1, 1, 1]],
    ['reversed', [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [0, 0, 0, 1, 1, 1]],
    ['all_tied', [0.5] * 5, [0, 1, 0, 1, 1]],
    ['one_positive', [0.3, 0.2, 0.6, 0.4], [0, 0, 1, 0]],
    ['no_pred_positive', [0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1]],
]


@pytest.mark.parametrize('name,scores,labels', CASES,
                         ids=[c[0] for c in CASES])
def test_calculate_matches_sklearn(name, scores, labels):
    ours = BinaryClsMetric.calculate(scores, labels)
    ref = _sklearn_metrics(scores, labels)
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_calculate_thresholds_and_inputs():
    scores = torch.tensor([0.1, 0.35, 0.4, 0.8])
    labels = torch.tensor([0, 1, 0, 1])
    low = BinaryClsMetric.calculate(scores, labels, thr=0.3)
    assert low == pytest.approx(_sklearn_metrics(scores.numpy(),
                                                 labels.numpy(), thr=0.3))
    assert low['sensitivity'] == 1. and low['specificity'] == 0.5
    # the AUC does not depend on the threshold
    assert BinaryClsMetric.calculate(scores, labels, thr=0.9)['auc'] == \
        low['auc'] == 0.75


def test_calculate_large_is_vectorised():
    """200k samples: a loop over the 10^10 pairs would never finish."""
    rng = np.random.RandomState(4)
    labels = rng.randint(0, 2, 200_000)
    scores = (rng.rand(200_000) + 0.3 * labels).round(3)
    assert BinaryClsMetric.calculate(scores, labels)['auc'] == \
        pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_calculate_one_class_is_nan():
    only_neg = BinaryClsMetric.calculate([0.2, 0.7, 0.4], [0, 0, 0])
    assert math.isnan(only_neg['auc'])
    assert math.isnan(only_neg['sensitivity'])
    assert only_neg['specificity'] == pytest.approx(2 / 3)
    assert only_neg['precision'] == 0. and only_neg['f1'] == 0.
    only_pos = BinaryClsMetric.calculate([0.2, 0.7], [1, 1])
    assert math.isnan(only_pos['auc'])
    assert math.isnan(only_pos['specificity'])
    assert only_pos['sensitivity'] == 0.5


def test_calculate_bad_inputs():
    # labels must be 0 / 1
    with pytest.raises(ValueError, match='must be 0 or 1'):
        BinaryClsMetric.calculate([0.1, 0.9], [0, 2])
    # one score per label
    with pytest.raises(ValueError, match='same length'):
        BinaryClsMetric.calculate([0.1, 0.9, 0.3], [0, 1])
    # nothing to evaluate
    with pytest.raises(ValueError, match='non-empty'):
        BinaryClsMetric.calculate([], [])
    # NaN scores (a diverged model) are refused
    with pytest.raises(ValueError, match='finite'):
        BinaryClsMetric.calculate([0.1, float('nan')], [0, 1])


def _samples(scores, labels):
    return [
        DataSample().set_gt_label(int(g)).set_pred_score(
            torch.as_tensor(s, dtype=torch.float32))
        for s, g in zip(scores, labels)
    ]


def test_evaluator_with_mmpretrain_samples():
    rng = np.random.RandomState(5)
    labels = rng.randint(0, 2, 64)
    logits = torch.from_numpy(rng.randn(64, 2) + 1.5 * np.eye(2)[labels])
    probs = logits.softmax(1)
    evaluator = Evaluator(metrics=BinaryClsMetric())
    # in batches, as in a validation loop; mmpretrain's heads give softmax
    samples = _samples(probs, labels)
    for i in range(0, 64, 16):
        evaluator.process(samples[i:i + 16])
    metrics = evaluator.evaluate(64)
    ref = _sklearn_metrics(probs[:, 1].numpy(), labels)
    assert sorted(metrics) == sorted(f'binary/{k}' for k in ref)
    for key, value in ref.items():
        assert metrics[f'binary/{key}'] == pytest.approx(value, abs=1e-6)

    # raw logits are soft-maxed: same metrics
    evaluator = Evaluator(metrics=BinaryClsMetric(prefix='lidc'))
    evaluator.process(_samples(logits, labels))
    from_logits = evaluator.evaluate(64)
    for key, value in ref.items():
        assert from_logits[f'lidc/{key}'] == pytest.approx(value, abs=1e-6)


def test_single_score_and_pos_label():
    labels = [0, 1, 1, 0, 1]
    pos = [0.2, 0.9, 0.4, 0.6, 0.7]
    # one positive probability per sample (a sigmoid head)
    evaluator = Evaluator(metrics=BinaryClsMetric())
    evaluator.process(_samples([[p] for p in pos], labels))
    assert evaluator.evaluate(5)['binary/auc'] == \
        pytest.approx(roc_auc_score(labels, pos))
    # class 0 as the positive class
    evaluator = Evaluator(metrics=BinaryClsMetric(pos_label=0))
    evaluator.process(_samples([[1 - p, p] for p in pos], labels))
    metrics = evaluator.evaluate(5)
    neg_labels = [1 - g for g in labels]
    assert metrics['binary/auc'] == pytest.approx(
        roc_auc_score(neg_labels, [1 - p for p in pos]))
    assert metrics['binary/sensitivity'] == pytest.approx(
        recall_score(neg_labels, [int(1 - p >= 0.5) for p in pos]))


class _ListHandler(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_one_class_warns():
    # a fresh MMLogger becomes the 'current' one the metric logs to
    logger = MMLogger.get_instance('test_binary_cls_metric_one_class')
    handler = _ListHandler()
    logger.addHandler(handler)
    evaluator = Evaluator(metrics=BinaryClsMetric())
    evaluator.process(_samples([[0.8, 0.2], [0.3, 0.7]], [0, 0]))
    metrics = evaluator.evaluate(2)
    logger.removeHandler(handler)
    assert math.isnan(metrics['binary/auc'])
    assert metrics['binary/specificity'] == 0.5
    assert any('0 positives and 2 negatives' in m for m in handler.messages)


def test_process_errors():
    metric = BinaryClsMetric()
    # three classes: not a binary head (the Evaluator passes dicts)
    with pytest.raises(ValueError, match='2 classes'):
        metric.process(None,
                       [s.to_dict() for s in _samples([[0.2, 0.3, 0.5]],
                                                      [1])])
    # only a label, no scores: no AUC possible
    with pytest.raises(KeyError, match='pred_score'):
        metric.process(None, [DataSample().set_gt_label(1).set_pred_label(
            1).to_dict()])


def test_bad_args():
    # thr is a probability
    with pytest.raises(ValueError, match='thr'):
        BinaryClsMetric(thr=1.5)
    # the positive class of a binary head is 0 or 1
    with pytest.raises(ValueError, match='pos_label'):
        BinaryClsMetric(pos_label=2)


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_builds_in_every_scope(scope):
    registry = importlib.import_module(f'{scope}.registry').METRICS
    with DefaultScope.overwrite_default_scope(scope):
        metric = registry.build(dict(type='BinaryClsMetric', thr=0.4))
    assert isinstance(metric, BinaryClsMetric) and metric.thr == 0.4
    assert METRICS.get('BinaryClsMetric') is BinaryClsMetric
