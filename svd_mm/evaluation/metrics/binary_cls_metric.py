"""AUC and threshold metrics of a binary (benign / malignant) classifier."""
import logging
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.registry import METRICS

__all__ = ['BinaryClsMetric']

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]


def _to_numpy(values: ArrayLike) -> np.ndarray:
    """A flat numpy copy of a tensor, an array or a sequence."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values).ravel()


@METRICS.register_module()
class BinaryClsMetric(BaseMetric):
    r"""ROC AUC, accuracy, sensitivity, specificity, precision and F1 of a
    two-class classifier, as reported for LIDC-IDRI malignancy (Table IV).

    ``process`` keeps, for each sample, the probability of the positive
    class ``pos_label`` (malignant) and the ground truth. The probability is
    ``pred_score[pos_label]`` when ``pred_score`` of the mmpretrain
    ``DataSample`` is already a distribution (non-negative, summing to 1, as
    ``ClsHead`` predicts); otherwise ``pred_score`` is taken as logits and
    softmax-ed first. A single-element ``pred_score`` is the positive
    probability itself (a sigmoid head), or a logit if outside [0, 1].

    ``auc`` is ``sklearn.metrics.roc_auc_score`` (ties count 1/2, as in the
    Mann-Whitney rank statistic). The other metrics threshold the
    positive probability at ``thr`` (positive when ``prob >= thr``):
    sensitivity = TP / P, specificity = TN / N, precision = TP / (TP + FP),
    F1 = 2 TP / (2 TP + FP + FN) and accuracy, all in [0, 1].

    If the evaluated samples hold only one class, ``auc`` and the rate of the
    missing class (sensitivity without positives, specificity without
    negatives) are undefined: they are NaN and a warning names the counts.
    Precision and F1 without any predicted or true positive are 0, as
    sklearn's ``zero_division=0``.

    Args:
        thr (float): Threshold on the positive probability. Defaults to 0.5.
        pos_label (int): Index of the positive (malignant) class in
            ``pred_score`` and value of positive ``gt_label``. Defaults to 1.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None,
            i.e. ``'binary'``.

    Examples:
        >>> import torch
        >>> from mmengine.evaluator import Evaluator
        >>> from mmpretrain.structures import DataSample
        >>> from svd_mm.evaluation import BinaryClsMetric
        >>> scores = [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]]
        >>> samples = [
        ...     DataSample().set_gt_label(g).set_pred_score(torch.tensor(s))
        ...     for g, s in zip([0, 0, 1, 1], scores)]
        >>> evaluator = Evaluator(metrics=BinaryClsMetric())
        >>> evaluator.process(samples)
        >>> metrics = evaluator.evaluate(4)
        >>> metrics['binary/auc'], metrics['binary/accuracy']
        (0.75, 0.5)
    """
    default_prefix: Optional[str] = 'binary'

    def __init__(self,
                 thr: float = 0.5,
                 pos_label: int = 1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0. <= thr <= 1.:
            raise ValueError(f'thr is a probability threshold in [0, 1], '
                             f'but got {thr}')
        if pos_label not in (0, 1):
            raise ValueError(f'pos_label must be 0 or 1, but got {pos_label}')
        self.thr = thr
        self.pos_label = pos_label

    def _positive_prob(self, score: torch.Tensor) -> float:
        """The positive-class probability of one ``pred_score``."""
        score = score.detach().float().cpu().flatten()
        if score.numel() == 1:
            value = score[0]
            if not 0. <= value <= 1.:
                value = value.sigmoid()
            return float(value if self.pos_label == 1 else 1. - value)
        if score.numel() != 2:
            raise ValueError(
                f'{self.__class__.__name__} expects pred_score with 2 '
                f'classes (or 1 positive score), but got {score.numel()}: '
                'set num_classes=2 in the head')
        is_dist = bool((score >= 0).all()) and \
            abs(float(score.sum()) - 1.) < 1e-4
        if not is_dist:
            score = score.softmax(0)
        return float(score[self.pos_label])

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the positive probability and label of each sample.

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs with ``pred_score``
                and ``gt_label``.
        """
        for data_sample in data_samples:
            if 'pred_score' not in data_sample:
                raise KeyError(
                    f'{self.__class__.__name__} needs pred_score (class '
                    'scores) to compute the AUC, but the data sample only '
                    f'has {sorted(data_sample)}')
            gt = torch.as_tensor(data_sample['gt_label']).flatten()
            if gt.numel() != 1:
                raise ValueError('Expected one gt_label per sample, got '
                                 f'{gt.tolist()}')
            self.results.append(dict(
                pos_prob=self._positive_prob(data_sample['pred_score']),
                gt_label=int(gt[0])))

    def compute_metrics(self, results: List[dict]) -> dict:
        """Compute the metrics from the processed results.

        Args:
            results (list[dict]): ``pos_prob`` and ``gt_label`` per sample.

        Returns:
            dict: ``auc``, ``accuracy``, ``sensitivity``, ``specificity``,
            ``precision`` and ``f1``, floats in [0, 1] (or NaN).
        """
        probs = np.array([r['pos_prob'] for r in results], dtype=np.float64)
        labels = np.array([r['gt_label'] for r in results], dtype=np.int64)
        if self.pos_label == 0:
            labels = 1 - labels
        num_pos = int((labels == 1).sum())
        if num_pos in (0, len(labels)):
            print_log(
                f'{self.__class__.__name__}: the {len(labels)} evaluated '
                f'samples hold {num_pos} positives and '
                f'{len(labels) - num_pos} negatives; the AUC needs both '
                'classes and is NaN',
                logger='current',
                level=logging.WARNING)
        return self.calculate(probs, labels, thr=self.thr)

    @staticmethod
    def calculate(pos_probs: ArrayLike,
                  gt_labels: ArrayLike,
                  thr: float = 0.5) -> dict:
        """The binary classification metrics of scores and labels.

        Args:
            pos_probs (torch.Tensor | np.ndarray | Sequence): Positive class
                score of each sample, shape (N, ). Any monotone score works
                for the AUC; the other metrics threshold it at ``thr``.
            gt_labels (torch.Tensor | np.ndarray | Sequence): 0 or 1 per
                sample, shape (N, ).
            thr (float): Samples with ``pos_probs >= thr`` are predicted
                positive. Defaults to 0.5.

        Returns:
            dict: ``auc``, ``accuracy``, ``sensitivity``, ``specificity``,
            ``precision``, ``f1`` as floats.

        Examples:
            >>> from svd_mm.evaluation import BinaryClsMetric
            >>> m = BinaryClsMetric.calculate(
            ...     [0.1, 0.4, 0.35, 0.8, 0.8], [0, 0, 1, 1, 0])
            >>> round(m['auc'], 4), round(m['specificity'], 4)
            (0.5833, 0.6667)
            >>> m['sensitivity'], m['precision'], m['accuracy']
            (0.5, 0.5, 0.6)
        """
        probs = _to_numpy(pos_probs).astype(np.float64)
        labels = _to_numpy(gt_labels)
        if probs.shape != labels.shape or probs.size == 0:
            raise ValueError(
                f'pos_probs and gt_labels must be two non-empty arrays of '
                f'the same length, but got {probs.size} and {labels.size}')
        if not np.isin(labels, (0, 1)).all():
            raise ValueError('gt_labels must be 0 or 1, but got '
                             f'{sorted(set(labels.tolist()))}')
        if not np.isfinite(probs).all():
            raise ValueError('pos_probs must be finite')
        from sklearn.metrics import confusion_matrix, roc_auc_score
        (tn, fp), (fn, tp) = confusion_matrix(
            labels, probs >= thr, labels=[0, 1]).tolist()
        num_pos, num_neg = tp + fn, tn + fp

        def _ratio(num: int, den: int, empty: float) -> float:
            return num / den if den else empty

        return dict(
            auc=float(roc_auc_score(labels, probs))
            if num_pos and num_neg else float('nan'),
            accuracy=(tp + tn) / labels.size,
            sensitivity=_ratio(tp, num_pos, float('nan')),
            specificity=_ratio(tn, num_neg, float('nan')),
            precision=_ratio(tp, tp + fp, 0.),
            f1=_ratio(2 * tp, 2 * tp + fp + fn, 0.))
