"""The LIDC-IDRI nodule release of ACS / SVD-Net (Tables III and IV)."""
import csv
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DATASETS

__all__ = ['LIDCNoduleDataset']


def _read_csv(path: str, what: str) -> Tuple[List[str], List[dict]]:
    """Read a CSV file as its header and a list of row dicts."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'The {what} {path} does not exist')
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fieldnames = reader.fieldnames or []
    if not fieldnames:
        raise ValueError(f'The {what} {path} is empty (no header row)')
    return fieldnames, rows


def _is_padding(cell: Optional[str]) -> bool:
    """Whether a CSV cell is the padding of a shorter column (pandas writes
    NaN as an empty cell)."""
    return cell is None or cell.strip() in ('', 'nan', 'NaN', 'NAN')


@DATASETS.register_module()
class LIDCNoduleDataset(BaseDataset):
    """LIDC-IDRI nodules for malignancy classification or segmentation.

    The release used by ACS (Yang et al., "Reinventing 2D Convolutions for
    3D Images") and SVD-Net has one npz file per nodule, a split CSV and a
    nodule info CSV:

    .. code-block:: none

        data_root/
        ├── nodule/
        │   ├── LIDC-IDRI-0001_1.npz   # voxel (uint8, D, H, W), answer1..4
        │   └── ...
        ├── train_test_split.csv       # columns train / test (2142 / 526
        │                              # names, the shorter one NaN-padded)
        └── info/
            └── lidc_nodule_info_new_with_subset.csv   # index, malignancy..

    ``task='seg'`` lists every nodule of the split with its mask
    (``mask_key``, the first rater's ``answer1`` by default), for the
    segmentation of Table III. ``task='cls'`` lists the nodules with a
    benign (0) or malignant (1) label for Table IV. The label comes from
    the malignancy score of the info CSV, read from ``malignancy_key``
    (by default ``malignancy_mode``, the raters' mode that ACS's
    ``LIDCTwoClassDataset`` reads, or ``malignancy`` when the file has no
    such column). Scores 1-2 are benign, 4-5 malignant and 3
    (indeterminate) is dropped, as in ACS. Fractional scores (e.g. the
    raters' mean) are rounded to the nearest integer with halves going to 3:
    below 2.5 is benign, above 3.5 malignant and [2.5, 3.5] is dropped; for
    integer scores this is exactly ACS's rule. The number of dropped and
    kept nodules per class is logged.

    Names in the split CSV may carry the ``.npz`` suffix (as in the
    release) or not. Unlike ACS, which silently skips split names that are
    not in the info CSV, every missing file or info row is an error that
    names it.

    Args:
        data_root (str): The root folder. Defaults to ''.
        ann_file (str): The split CSV, relative to ``data_root``. Defaults
            to ``'train_test_split.csv'``.
        info_file (str): The nodule info CSV, relative to ``data_root``;
            only read when ``task='cls'``. Defaults to
            ``'info/lidc_nodule_info_new_with_subset.csv'``.
        data_prefix (dict): ``img_path``: the folder of the npz files,
            relative to ``data_root``. Defaults to ``dict(img_path='nodule')``.
        split (str): Column of the split CSV to read, e.g. ``'train'`` or
            ``'test'``. Defaults to ``'train'``.
        task (str): ``'cls'`` or ``'seg'``. Defaults to ``'cls'``.
        mask_key (str): Key of the mask in the npz files for ``task='seg'``.
            Defaults to ``'answer1'``.
        name_key (str, optional): Column of the info CSV with the nodule
            names. Defaults to None: ``'index'`` (the release), else
            ``'name'``.
        malignancy_key (str, optional): Column of the info CSV with the
            malignancy score (1-5). Defaults to None: ``'malignancy_mode'``
            (the release), else ``'malignancy'``.
        metainfo (dict, optional): Overrides the class names (and palette).
            Defaults to None: :attr:`METAINFO` for ``cls``,
            :attr:`SEG_METAINFO` for ``seg``.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``indices`` ...).

    Examples:
        >>> from svd_mm.datasets import LIDCNoduleDataset
        >>> dataset = LIDCNoduleDataset(
        ...     data_root='data/lidc', split='test', task='cls',
        ...     pipeline=[dict(type='LoadNoduleNpz'),
        ...               dict(type='CenterCrop3D', crop_size=48),
        ...               dict(type='ScaleIntensity'),
        ...               dict(type='PackInputs')])  # doctest: +SKIP
    """

    METAINFO = dict(classes=('benign', 'malignant'))
    SEG_METAINFO = dict(
        classes=('background', 'nodule'), palette=[[0, 0, 0], [255, 0, 0]])
    TASKS = ('cls', 'seg')

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'train_test_split.csv',
                 info_file: str = 'info/lidc_nodule_info_new_with_subset.csv',
                 data_prefix: dict = dict(img_path='nodule'),
                 split: str = 'train',
                 task: str = 'cls',
                 mask_key: str = 'answer1',
                 name_key: Optional[str] = None,
                 malignancy_key: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if task not in self.TASKS:
            raise ValueError(f"task must be one of {self.TASKS}, but got "
                             f'{task!r}')
        if not isinstance(mask_key, str) or not mask_key:
            raise TypeError(f'mask_key must be a non-empty str such as '
                            f"'answer1', but got {mask_key!r}")
        if 'img_path' not in data_prefix:
            raise KeyError("data_prefix must have the key 'img_path' (the "
                           f'folder of the npz files), but got {data_prefix}')
        self.split = split
        self.task = task
        self.mask_key = mask_key
        self.name_key = name_key
        self.malignancy_key = malignancy_key
        if info_file and not osp.isabs(info_file) and data_root:
            info_file = osp.join(data_root, info_file)
        self.info_file = info_file
        if metainfo is None and task == 'seg':
            metainfo = self.SEG_METAINFO
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    @staticmethod
    def malignancy_to_label(score: float) -> Optional[int]:
        """Map a malignancy score in [1, 5] to 0 (benign), 1 (malignant) or
        None (indeterminate, dropped).

        Examples:
            >>> from svd_mm.datasets import LIDCNoduleDataset
            >>> [LIDCNoduleDataset.malignancy_to_label(s)
            ...  for s in (1, 2, 2.4, 2.5, 3, 3.5, 3.75, 5)]
            [0, 0, 0, None, None, None, 1, 1]
        """
        if not 1. <= score <= 5.:  # also rejects NaN
            raise ValueError(f'malignancy must be in [1, 5], got {score}')
        if score < 2.5:
            return 0
        if score > 3.5:
            return 1
        return None

    def _read_split(self) -> List[str]:
        """The names of the split's column, padding and ``.npz`` removed."""
        fieldnames, rows = _read_csv(self.ann_file, 'split CSV')
        if self.split not in fieldnames:
            raise ValueError(
                f'split {self.split!r} is not a column of {self.ann_file}; '
                f'its columns are {[c for c in fieldnames if c]}')
        names = [
            row[self.split].strip().removesuffix('.npz') for row in rows
            if not _is_padding(row[self.split])
        ]
        if not names:
            raise ValueError(f'The {self.split!r} column of {self.ann_file} '
                             'lists no nodule')
        return names

    def _pick_column(self, fieldnames: Sequence[str], given: Optional[str],
                     defaults: Sequence[str], what: str) -> str:
        candidates = [given] if given is not None else list(defaults)
        for column in candidates:
            if column in fieldnames:
                return column
        raise KeyError(
            f'The info CSV {self.info_file} has no {what} column '
            f'{" or ".join(map(repr, candidates))}; its columns are '
            f'{[c for c in fieldnames if c]}')

    def _read_malignancy(self) -> dict:
        """Map nodule name (without ``.npz``) -> malignancy score."""
        fieldnames, rows = _read_csv(self.info_file, 'nodule info CSV')
        name_col = self._pick_column(fieldnames, self.name_key,
                                     ('index', 'name'), 'name')
        score_col = self._pick_column(fieldnames, self.malignancy_key,
                                      ('malignancy_mode', 'malignancy'),
                                      'malignancy')
        scores = {}
        for i, row in enumerate(rows, start=2):  # line 1 is the header
            name = row[name_col].strip().removesuffix('.npz')
            if name in scores:
                raise ValueError(f'Nodule {name!r} appears twice in '
                                 f'{self.info_file} (line {i})')
            try:
                scores[name] = float(row[score_col])
            except (TypeError, ValueError):
                scores[name] = math.nan
        return scores

    def load_data_list(self) -> List[dict]:
        """Read the split and, for ``cls``, the malignancy labels.

        Returns:
            list[dict]: One plain dict per nodule with ``img_path``,
            ``case_id`` and ``gt_label`` (cls) or ``seg_map_path``,
            ``mask_key``, ``seg_fields`` and ``reduce_zero_label`` (seg).
        """
        names = self._read_split()
        img_dir = self.data_prefix['img_path']
        paths = [osp.join(img_dir, n + '.npz') for n in names]
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of the {len(paths)} nodules of split '
                f'{self.split!r} in {self.ann_file} have no file in '
                f'{img_dir}, e.g. {missing[:5]}')

        if self.task == 'seg':
            return [
                dict(
                    img_path=path,
                    seg_map_path=path,
                    mask_key=self.mask_key,
                    case_id=name,
                    seg_fields=[],
                    reduce_zero_label=False)
                for name, path in zip(names, paths)
            ]

        scores = self._read_malignancy()
        absent = [n for n in names if n not in scores]
        if absent:
            raise KeyError(
                f'{len(absent)} of the {len(names)} nodules of split '
                f'{self.split!r} have no row in {self.info_file}, e.g. '
                f'{absent[:5]}')
        data_list = []
        for name, path in zip(names, paths):
            try:
                label = self.malignancy_to_label(scores[name])
            except ValueError as e:
                raise ValueError(
                    f'Nodule {name!r} in {self.info_file}: {e}') from None
            if label is not None:
                data_list.append(
                    dict(img_path=path, gt_label=label, case_id=name))
        counts = np.bincount([d['gt_label'] for d in data_list], minlength=2)
        print_log(
            f'{self.__class__.__name__} ({self.split}, cls): kept '
            f'{len(data_list)} nodules ({counts[0]} benign, {counts[1]} '
            f'malignant), dropped {len(names) - len(data_list)} with '
            'malignancy 3 (indeterminate)',
            logger='current')
        if not data_list:
            raise ValueError(
                f'No nodule of split {self.split!r} has a benign or '
                f'malignant score in {self.info_file}')
        return data_list

    def get_cat_ids(self, idx: int) -> List[int]:
        """The class of nodule ``idx`` (``cls`` only), for
        ``ClassBalancedDataset``."""
        if self.task != 'cls':
            raise NotImplementedError(
                "get_cat_ids and get_gt_labels are only defined for "
                "task='cls'")
        return [int(self.get_data_info(idx)['gt_label'])]

    def get_gt_labels(self) -> np.ndarray:
        """The labels of all nodules (``cls`` only), as mmpretrain
        datasets provide."""
        return np.array([self.get_cat_ids(i)[0] for i in range(len(self))])

    def __repr__(self) -> str:
        head = f'Dataset {self.__class__.__name__}'
        num = len(self) if self._fully_initialized else 'not yet loaded'
        body = [
            f'Task: {self.task}', f'Split: {self.split}',
            f'Number of samples: \t{num}',
            f'Annotation file: \t{self.ann_file}',
            f'Info file: \t{self.info_file}',
            f'Prefix of images: \t{self.data_prefix["img_path"]}'
        ]
        return '\n'.join([head] + [' ' * 4 + line for line in body])
