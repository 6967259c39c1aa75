"""LiTS liver segmentation (SVD-Net Table V)."""
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.fileio import load
from mmengine.registry import DATASETS

from svd_mm.utils.medical_io import volume_stem
from svd_mm.utils.volume_io import NIFTI_SUFFIXES

__all__ = ['LiTSDataset']

_CASE = re.compile(r'^(?:volume-)?(\d+)$')


def _case_id(value, ann_file: str) -> str:
    """Normalise ``3``, ``'3'`` or ``'volume-3'`` to ``'volume-3'``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f'volume-{value}'
    match = _CASE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{ann_file}: {value!r} is not a LiTS case id such '
                         'as "volume-3" or 3')
    return f'volume-{int(match.group(1))}'


@DATASETS.register_module()
class LiTSDataset(BaseDataset):
    """The LiTS training CTs for liver segmentation.

    Reads the output of ``tools/dataset_converters/prepare_lits.py``:

    .. code-block:: none

        data_root/
        ├── images/volume-N.nii         # uint8, 1 mm slices
        ├── labels/segmentation-N.nii   # uint8, 1 = liver (+ tumour)
        ├── meta/volume-N.json          # original geometry, settings
        └── split.json                  # {"train": [...], "val": [...],
                                        #  "test": [...]}

    or, with ``preprocess`` set, the raw LiTS files (``volume-N.nii`` and
    ``segmentation-N.nii`` anywhere under the ``img_path`` /
    ``seg_map_path`` folders, e.g. in ``Training Batch 1`` / ``2``), which
    :class:`~svd_mm.datasets.transforms.LoadVolumeNifti` then preprocesses
    with the same functions as the preparation script. In both cases the
    split file lists case ids (``"volume-N"`` or ``N``) per split; the
    preparation script writes one (105 / 13 / 13 cases, seeded) or checks
    and copies yours.

    Each data info is a plain dict with ``img_path``, ``seg_map_path``,
    ``case_id`` (``'volume-N'``), ``seg_fields`` and ``reduce_zero_label``
    and, for prepared data, ``original_geometry`` (``affine``, ``shape``
    (D, H, W) and ``spacing`` of the raw volume, from the meta json) or,
    for raw data, ``preprocess``.

    Args:
        data_root (str): The root folder. Defaults to ''.
        ann_file (str): The split JSON, relative to ``data_root``. Defaults
            to 'split.json'.
        split (str): Split to read: 'train', 'val' or 'test'.
            Defaults to 'train'.
        data_prefix (dict): Folders relative to ``data_root``: ``img_path``
            (volumes), ``seg_map_path`` (labels) and ``meta_path`` (meta
            jsons of prepared data). Defaults to ``dict(img_path='images',
            seg_map_path='labels', meta_path='meta')``.
        preprocess (dict, optional): Read raw LiTS volumes and preprocess
            them on the fly with these settings (keys of
            :class:`~svd_mm.datasets.transforms.LoadVolumeNifti`'s
            ``preprocess``, e.g. ``dict(window=(-200, 250),
            spacing_z=1.0)``); the meta folder is not read. Defaults to None
            (prepared data).
        metainfo (dict, optional): Overrides :attr:`METAINFO`.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``indices`` ...).

    Examples:
        >>> from svd_mm.datasets import LiTSDataset
        >>> dataset = LiTSDataset(
        ...     data_root='data/lits_prepared', split='val',
        ...     pipeline=[dict(type='LoadVolumeNifti', with_seg=True),
        ...               dict(type='PackSegVolumeInputs')])  # doctest: +SKIP
    """

    METAINFO = dict(
        classes=('background', 'liver'), palette=[[0, 0, 0], [255, 0, 0]])
    SPLITS = ('train', 'val', 'test')

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'split.json',
                 split: str = 'train',
                 data_prefix: dict = dict(
                     img_path='images',
                     seg_map_path='labels',
                     meta_path='meta'),
                 preprocess: Optional[dict] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if split not in self.SPLITS:
            raise ValueError(f'split must be one of {self.SPLITS}, but got '
                             f'{split!r}')
        for key in ('img_path', 'seg_map_path'):
            if key not in data_prefix:
                raise KeyError(f'data_prefix needs the key {key!r}, but got '
                               f'{data_prefix}')
        if preprocess is None and 'meta_path' not in data_prefix:
            raise KeyError("data_prefix needs 'meta_path' (the meta jsons of "
                           'prepared data) unless preprocess is set, but got '
                           f'{data_prefix}')
        if preprocess is not None and not isinstance(preprocess, dict):
            raise TypeError(f'preprocess must be a dict or None, got '
                            f'{preprocess!r}')
        self.split = split
        self.preprocess = preprocess
        super().__init__(ann_file=ann_file, metainfo=metainfo,
                         data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def _read_split(self) -> List[str]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'Split file {self.ann_file} does not exist; run '
                'tools/dataset_converters/prepare_lits.py first')
        try:
            split = load(self.ann_file, file_format='json')
        except json.JSONDecodeError as e:
            raise ValueError(
                f'Split file {self.ann_file} is not valid JSON: {e}') from e
        if not isinstance(split, dict) or self.split not in split:
            keys = sorted(split) if isinstance(split, dict) else split
            raise KeyError(f'Split file {self.ann_file} has no '
                           f'{self.split!r} list; it has {keys}')
        case_ids = [_case_id(v, self.ann_file) for v in split[self.split]]
        if not case_ids:
            raise ValueError(f'The {self.split!r} split of {self.ann_file} '
                             'is empty')
        if len(set(case_ids)) != len(case_ids):
            raise ValueError(f'The {self.split!r} split of {self.ann_file} '
                             'lists a case twice')
        return case_ids

    @staticmethod
    def _index_files(folder: str, what: str) -> Dict[str, str]:
        """Map ``name`` (without suffix) to path for every NIfTI file under
        ``folder`` (recursively)."""
        if not osp.isdir(folder):
            raise FileNotFoundError(f'The {what} folder {folder} does not '
                                    'exist')
        index = {}
        for root, _, files in os.walk(folder):
            for name in (n for n in files if n.endswith(NIFTI_SUFFIXES)):
                stem, path = volume_stem(name), osp.join(root, name)
                if stem in index:
                    raise ValueError(
                        f'{stem} appears twice: {index[stem]} and {path}')
                index[stem] = path
        return index

    def load_data_list(self) -> List[dict]:
        """Read the split and find each case's files.

        Returns:
            list[dict]: One plain dict per case.
        """
        case_ids = self._read_split()
        images = self._index_files(self.data_prefix['img_path'], 'image')
        labels = self._index_files(self.data_prefix['seg_map_path'], 'label')
        data_list, missing = [], []
        for case_id in case_ids:
            label_id = 'segmentation-' + case_id.split('-')[-1]
            image, label = images.get(case_id), labels.get(label_id)
            for key, stem, path in (('img_path', case_id, image),
                                    ('seg_map_path', label_id, label)):
                if path is None:
                    missing.append(
                        f'{stem}.nii[.gz] in {self.data_prefix[key]}')
            info = dict(
                img_path=image,
                seg_map_path=label,
                case_id=case_id,
                seg_fields=[],
                reduce_zero_label=False)
            if self.preprocess is not None:
                info['preprocess'] = dict(self.preprocess)
            else:
                meta_path = osp.join(self.data_prefix['meta_path'],
                                     case_id + '.json')
                if not osp.isfile(meta_path):
                    missing.append(meta_path)
                else:
                    meta = load(meta_path)
                    if 'original' not in meta:
                        raise KeyError(f"{meta_path} has no 'original' "
                                       'geometry; prepare the data again')
                    info['original_geometry'] = meta['original']
            data_list.append(info)
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} files of the {len(case_ids)} cases of split '
                f'{self.split!r} ({self.ann_file}) are missing, e.g. '
                f'{missing[:5]}')
        return data_list

    def __repr__(self) -> str:
        head = f'Dataset {self.__class__.__name__}'
        num = len(self) if self._fully_initialized else 'not yet loaded'
        body = [
            f'Split: {self.split}', f'Number of cases: \t{num}',
            f'Split file: \t{self.ann_file}',
            f'Images: \t{self.data_prefix["img_path"]}',
            f'Labels: \t{self.data_prefix["seg_map_path"]}',
            f'Preprocess: \t{self.preprocess}'
        ]
        return '\n'.join([head] + [' ' * 4 + line for line in body])
