"""Dice of 3D segmentations, per case and over all voxels."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

__all__ = ['DiceMetric3D']


@METRICS.register_module()
class DiceMetric3D(BaseMetric):
    """Dice of 3D segmentations for every foreground class.

    ``process`` counts, for each case (volume) and foreground class
    k = 1..K-1, the voxels of ``intersection`` (predicted k and labelled
    k), ``pred_area`` (predicted k) and ``gt_area`` (labelled k), leaving
    out voxels labelled ``ignore_index``. ``compute_metrics`` turns the
    counts into

    - ``dice_per_case``: the mean over cases of the case's Dice
      ``2 * I / (P + G)`` (the "Dice per case" of the LiTS challenge). A
      case where the class is neither labelled nor predicted
      (``P + G == 0``) scores 1.0: nothing to find and nothing found;
    - ``dice_global``: ``2 * sum(I) / (sum(P) + sum(G))`` over all voxels
      of all cases (LiTS "Dice global").

    With more than one foreground class both are the means over the classes
    and each class also gets ``dice_per_case/{name}`` and
    ``dice_global/{name}``, named after ``dataset_meta['classes']``.
    Values are fractions in [0, 1].

    Args:
        num_classes (int, optional): Number of classes, background
            included. Defaults to None: the length of
            ``dataset_meta['classes']``, else 2.
        ignore_index (int): Label of voxels left out. Defaults to 255.
        collect_device (str): Device to gather the results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if num_classes is not None and num_classes < 2:
            raise ValueError('num_classes counts the background too and '
                             f'must be >= 2, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Count the voxels of each case.

        Args:
            data_batch (dict): A batch from the dataloader. Unused.
            data_samples (Sequence[dict]): Outputs of the segmentor, with
                ``pred_sem_seg`` and ``gt_sem_seg`` of shape (1, D, H, W)
                (as dicts or data elements).
        """
        classes = (self.dataset_meta or {}).get('classes')
        num_classes = self.num_classes or (len(classes) if classes else 2)
        for data_sample in data_samples:
            pred = torch.as_tensor(data_sample['pred_sem_seg']['data'])
            gt = torch.as_tensor(data_sample['gt_sem_seg']['data'])
            if pred.shape != gt.shape:
                case = data_sample.get('case_id', data_sample.get('img_path'))
                raise ValueError(
                    f'pred_sem_seg of shape {tuple(pred.shape)} and '
                    f'gt_sem_seg of shape {tuple(gt.shape)} of case {case} '
                    'differ; predictions must be at the label resolution')
            valid = gt != self.ignore_index
            counts = np.zeros((3, num_classes - 1), dtype=np.int64)
            for k in range(1, num_classes):
                pred_k = (pred == k) & valid
                gt_k = gt == k
                counts[:, k - 1] = [(pred_k & gt_k).sum().item(),
                                    pred_k.sum().item(),
                                    gt_k.sum().item()]
            self.results.append(dict(
                intersection=counts[0], pred_area=counts[1],
                gt_area=counts[2]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the Dice values from the per-case counts.

        Args:
            results (list[dict]): The per-case counts of ``process``.

        Returns:
            dict[str, float]: ``dice_per_case``, ``dice_global`` and, for
            more than one foreground class, the same per class.
        """
        if len(results) == 0:
            raise ValueError('DiceMetric3D got no cases to evaluate')
        dice = self.calculate(
            np.stack([r['intersection'] for r in results]),
            np.stack([r['pred_area'] for r in results]),
            np.stack([r['gt_area'] for r in results]))
        metrics = {
            'dice_per_case': float(dice['per_case'].mean()),
            'dice_global': float(dice['global'].mean())
        }
        num_foreground = dice['per_case'].shape[0]
        if num_foreground > 1:
            classes = (self.dataset_meta or {}).get('classes')
            if classes is None or len(classes) != num_foreground + 1:
                classes = [f'class{k}' for k in range(num_foreground + 1)]
            for k, name in enumerate(classes[1:]):
                metrics[f'dice_per_case/{name}'] = float(dice['per_case'][k])
                metrics[f'dice_global/{name}'] = float(dice['global'][k])
        return metrics

    @staticmethod
    def calculate(intersection: np.ndarray, pred_area: np.ndarray,
                  gt_area: np.ndarray) -> Dict[str, np.ndarray]:
        """Dice per case and global Dice from voxel counts.

        Args:
            intersection (np.ndarray): (num_cases, num_foreground) voxels
                predicted and labelled as the class.
            pred_area (np.ndarray): (num_cases, num_foreground) voxels
                predicted as the class.
            gt_area (np.ndarray): (num_cases, num_foreground) voxels
                labelled as the class.

        Returns:
            dict[str, np.ndarray]: ``per_case`` (num_foreground, ), the mean
            over cases of each case's Dice (1.0 for a case with
            ``pred_area + gt_area == 0``), and ``global``
            (num_foreground, ), the Dice of the summed counts (1.0 when all
            are zero).

        Examples:
            >>> import numpy as np
            >>> dice = DiceMetric3D.calculate(
            ...     intersection=np.array([[2], [0], [0]]),
            ...     pred_area=np.array([[3], [0], [4]]),
            ...     gt_area=np.array([[2], [0], [0]]))
            >>> # cases: 2*2/(3+2) = 0.8, empty = 1.0, 0/(4+0) = 0.0
            >>> print(dice['per_case'], dice['global'])
            [0.6] [0.44444444]
        """
        intersection = np.asarray(intersection, dtype=np.float64)
        denominator = np.asarray(pred_area, dtype=np.float64) + np.asarray(
            gt_area, dtype=np.float64)
        if intersection.ndim != 2 or intersection.shape != denominator.shape:
            raise ValueError(
                'intersection, pred_area and gt_area must all be '
                '(num_cases, num_foreground), but got shapes '
                f'{np.shape(intersection)}, {np.shape(pred_area)} and '
                f'{np.shape(gt_area)}')
        with np.errstate(invalid='ignore', divide='ignore'):
            case_dice = np.where(denominator > 0,
                                 2 * intersection / denominator, 1.0)
            total = denominator.sum(0)
            global_dice = np.where(total > 0, 2 * intersection.sum(0) / total,
                                   1.0)
        return {'per_case': case_dice.mean(0), 'global': global_dice}
