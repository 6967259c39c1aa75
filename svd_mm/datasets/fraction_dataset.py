"""A fixed, nested fraction of a dataset, for data-efficiency experiments."""
import math
from typing import Dict, Hashable, List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.registry import DATASETS

__all__ = ['FractionDataset']


@DATASETS.register_module()
class FractionDataset:
    """Wrap a dataset and keep a fixed fraction of its samples.

    SVD-Net fine-tunes with 20, 40, 60, 80 and 100 % of the training data.
    The kept samples are the first ``round(fraction * N)`` of a random
    permutation of the N samples drawn with ``seed``, listed in the order of
    the dataset. The permutation does not depend on ``fraction``, so with
    the same ``seed`` the subsets are nested: the 20 % subset is part of the
    40 % subset, which is part of the 60 % one, and so on; and the same
    ``seed`` gives the same subset in every run (training repeats with other
    seeds use the same data).

    With ``stratify_key`` (e.g. ``'gt_label'``), the samples are grouped by
    that key of their data info and the fraction is taken within each group
    (each group with its own part of the permutation), which keeps the
    class ratio of a small subset; the subsets are still nested.

    Like mmengine's ``RepeatDataset``, the wrapper works with any
    ``BaseDataset`` (mmpretrain, mmdet, mmseg or svd_mm datasets) and
    forwards ``metainfo``, ``get_data_info`` and ``get_cat_ids``.

    Args:
        dataset (BaseDataset | dict): The dataset or its config.
        fraction (float): Fraction of the samples to keep, in (0, 1].
        seed (int): Seed of the permutation. Defaults to 0.
        stratify_key (str, optional): Key of the data info to stratify by;
            its values must be hashable (e.g. an int label).
            Defaults to None.
        lazy_init (bool): Whether to defer loading the annotations of the
            wrapped dataset (and choosing the subset) until first use.
            Defaults to False.

    Example:
        >>> from mmengine.dataset import BaseDataset
        >>> class Toy(BaseDataset):
        ...     def load_data_list(self):
        ...         return [dict(idx=i) for i in range(10)]
        >>> subset = FractionDataset(Toy(), fraction=0.4, seed=0)
        >>> len(subset)
        4
        >>> set(subset.indices) <= set(
        ...     FractionDataset(Toy(), fraction=0.6, seed=0).indices)
        True
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 fraction: float,
                 seed: int = 0,
                 stratify_key: Optional[str] = None,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(dataset)
        elif isinstance(dataset, BaseDataset):
            self.dataset = dataset
        else:
            raise TypeError('dataset must be a BaseDataset or a config dict, '
                            f'but got {type(dataset).__name__}')
        if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
            raise ValueError('fraction must be a number in (0, 1], but got '
                             f'{fraction!r}')
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f'seed must be an int, but got {seed!r}')
        self.fraction = float(fraction)
        self.seed = seed
        self.stratify_key = stratify_key
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """dict: The meta information of the wrapped dataset (a copy)."""
        return self.dataset.metainfo

    @staticmethod
    def num_kept(num_samples: int, fraction: float) -> int:
        """Number of samples kept: ``fraction * num_samples`` rounded half
        up.

        Examples:
            >>> [FractionDataset.num_kept(12, f)
            ...  for f in (0.2, 0.4, 0.6, 0.8, 1.0)]
            [2, 5, 7, 10, 12]
        """
        return int(math.floor(fraction * num_samples + 0.5 + 1e-9))

    def _groups(self, num_samples: int) -> List[List[int]]:
        """The indices of each stratum (all indices without stratifying)."""
        if self.stratify_key is None:
            return [list(range(num_samples))]
        groups: Dict[Hashable, List[int]] = {}
        for idx in range(num_samples):
            info = self.dataset.get_data_info(idx)
            if self.stratify_key not in info:
                raise KeyError(
                    f'stratify_key {self.stratify_key!r} is not in the data '
                    f'info of sample {idx} of {type(self.dataset).__name__} '
                    f'(its keys: {sorted(info)})')
            value = info[self.stratify_key]
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.item()
            try:
                groups.setdefault(value, []).append(idx)
            except TypeError:
                raise TypeError(
                    f'stratify_key {self.stratify_key!r} must have hashable '
                    f'values, but sample {idx} has {value!r}') from None
        return [groups[k] for k in sorted(groups, key=repr)]

    def full_init(self) -> None:
        """Initialise the wrapped dataset and choose the subset."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        num_samples = len(self.dataset)
        rng = np.random.default_rng(self.seed)
        kept = []
        for group in self._groups(num_samples):
            order = rng.permutation(len(group))
            num = self.num_kept(len(group), self.fraction)
            kept.extend(group[i] for i in order[:num])
        if not kept:
            raise ValueError(
                f'fraction={self.fraction} of the {num_samples} samples of '
                f'{type(self.dataset).__name__} keeps no sample')
        self.indices = sorted(int(i) for i in kept)
        self._ori_len = num_samples
        self._fully_initialized = True

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The data info of the ``idx``-th kept sample."""
        return self.dataset.get_data_info(self.indices[idx])

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        """The category ids of the ``idx``-th kept sample."""
        return self.dataset.get_cat_ids(self.indices[idx])

    def __getitem__(self, idx: int) -> dict:
        # as mmengine's BaseDataset: no force_full_init, which warns on the
        # first item of every dataloader worker under lazy_init
        if not self._fully_initialized:
            self.full_init()
        return self.dataset[self.indices[idx]]

    @force_full_init
    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__}'
                f', fraction={self.fraction}, seed={self.seed}, '
                f'stratify_key={self.stratify_key!r}, kept='
                f'{len(self.indices) if self._fully_initialized else "?"}/'
                f'{self._ori_len if self._fully_initialized else "?"})')
