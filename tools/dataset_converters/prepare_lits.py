"""Prepare the LiTS training volumes for :class:`svd_mm.datasets.LiTSDataset`.

LiTS (Liver Tumor Segmentation challenge) ships its 131 training CTs as
``volume-N.nii`` with labels ``segmentation-N.nii`` (0 background, 1 liver,
2 tumour), in one folder or split over ``Training Batch 1`` / ``Training
Batch 2`` (the folder is searched recursively; ``.nii.gz`` works too)::

    python tools/dataset_converters/prepare_lits.py DATA_DIR OUT_DIR \\
        [--seed 0] [--split-file my_split.json] [--spacing-z 1.0] \\
        [--window -200 250] [--compress] [--nproc 4]

writes::

    OUT_DIR/
    ├── images/volume-N.nii         # uint8, slices spacing_z mm apart
    ├── labels/segmentation-N.nii   # uint8, 1 = liver (labels 1 and 2)
    ├── meta/volume-N.json          # original and prepared geometry, ...
    └── split.json                  # {"train": [...], "val": [...], ...}

Every case goes through the same functions that
:class:`svd_mm.datasets.transforms.LoadVolumeNifti` calls for on-the-fly
preprocessing of raw volumes (:mod:`svd_mm.utils.volume_io`):

- image: HU clipped to the liver window [-200, 250] (centre 25, width 450)
  and mapped linearly onto [0, 255], the slices interpolated linearly to
  ``--spacing-z`` mm (1 mm) with the in-plane grid unchanged, and rounded to
  **uint8** (1.76 HU per step);
- label: liver = labels 1 and 2 (a tumour is part of the liver) -> 1, the
  nearest slice of the same grid;
- the prepared files carry the new affine (the old one with its slice axis
  scaled); ``meta/volume-N.json`` keeps the original affine, shape and
  spacing (``original``), the prepared ones (``prepared``) and the
  settings, so that predictions can be written back onto the original grid
  (:func:`svd_mm.utils.volume_io.save_prediction_nifti`).

Split: a seeded random permutation of the case ids (sorted by number) gives
105 / 13 / 13 train / val / test cases for the 131 LiTS volumes. For
another number N of volumes the proportions are kept:
``n_val = n_test = max(1, round(N * 13 / 131))`` and ``n_train = N -
n_val - n_test`` (at least 3 volumes are needed). Your own split:
``--split-file`` with a JSON file ``{"train": [...], "val": [...],
"test": [...]}`` listing case ids as ``"volume-N"`` or numbers ``N``; every
case must exist and be in at most one split (cases in none are prepared
but not used). It is checked and written to ``OUT_DIR/split.json``.

Errors (all naming the file): a volume without label, image and label of
different shapes or affines (``--affine-tol`` mm), NaN voxels, empty or
unreadable files, label values other than 0, 1, 2.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence

import numpy as np

from svd_mm.utils.volume_io import (LITS_HU_WINDOW, preprocess_ct_image,
                                    preprocess_label, read_nifti, write_nifti)

#: Cases of the LiTS training set and its train / val / test split sizes.
LITS_NUM_CASES = 131
LITS_SPLIT = (105, 13, 13)
SPLITS = ('train', 'val', 'test')
_VOLUME = re.compile(r'^volume-(\d+)\.nii(\.gz)?$')
_LABEL = re.compile(r'^segmentation-(\d+)\.nii(\.gz)?$')


def find_cases(data_dir: str) -> Dict[str, dict]:
    """Pair every ``volume-N.nii[.gz]`` under ``data_dir`` with its
    ``segmentation-N.nii[.gz]``.

    Returns:
        dict: ``{'volume-N': {'image': path, 'label': path}}`` sorted by N.

    Raises:
        FileNotFoundError: If ``data_dir`` is not a folder, holds no
            volume, or a volume has no label.
        ValueError: If a case appears twice.
    """
    if not osp.isdir(data_dir):
        raise FileNotFoundError(f'LiTS folder {data_dir} does not exist')
    images, labels = {}, {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            for pattern, found in ((_VOLUME, images), (_LABEL, labels)):
                match = pattern.match(name)
                if match is None:
                    continue
                number = int(match.group(1))
                path = osp.join(root, name)
                if number in found:
                    raise ValueError(f'Case {number} appears twice: '
                                     f'{found[number]} and {path}')
                found[number] = path
    if not images:
        raise FileNotFoundError(
            f'No volume-N.nii or volume-N.nii.gz under {data_dir}')
    missing = [images[n] for n in sorted(images) if n not in labels]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of the {len(images)} volumes under {data_dir} '
            f'have no segmentation-N.nii[.gz], e.g. {missing[:5]}')
    return {
        f'volume-{n}': dict(image=images[n], label=labels[n])
        for n in sorted(images)
    }


def split_sizes(num_cases: int) -> List[int]:
    """Train / val / test sizes: LiTS's 105 / 13 / 13 for 131 cases, the
    same proportions otherwise.

    Examples:
        >>> split_sizes(131), split_sizes(4), split_sizes(20)
        ([105, 13, 13], [2, 1, 1], [16, 2, 2])
    """
    if num_cases < 3:
        raise ValueError(f'A train/val/test split needs at least 3 volumes, '
                         f'got {num_cases}; pass --split-file instead')
    held_out = max(1, round(num_cases * LITS_SPLIT[1] / LITS_NUM_CASES))
    return [num_cases - 2 * held_out, held_out, held_out]


def make_split(case_ids: Sequence[str], seed: int = 0) -> Dict[str, list]:
    """Seeded random train / val / test split of the case ids.

    The ids are sorted by their number first, so the split depends only on
    the set of cases and the seed.
    """
    ids = sorted(case_ids, key=lambda c: int(c.split('-')[-1]))
    sizes = split_sizes(len(ids))
    order = np.random.RandomState(seed).permutation(len(ids))
    out, start = {}, 0
    for name, size in zip(SPLITS, sizes):
        chosen = [ids[i] for i in order[start:start + size]]
        out[name] = sorted(chosen, key=lambda c: int(c.split('-')[-1]))
        start += size
    return out


def _case_id(value, split_file: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f'volume-{value}'
    if isinstance(value, str):
        if value.isdigit():
            return f'volume-{int(value)}'
        match = re.match(r'^(?:volume-)?(\d+)(?:\.nii(?:\.gz)?)?$', value)
        if match:
            return f'volume-{int(match.group(1))}'
    raise ValueError(f'{split_file}: {value!r} is not a case id such as '
                     '"volume-3" or 3')


def read_split_file(split_file: str,
                    case_ids: Sequence[str]) -> Dict[str, list]:
    """Read and check a user split ``{"train": [...], "val": [...],
    "test": [...]}`` (``val`` / ``test`` may be missing or empty)."""
    if not osp.isfile(split_file):
        raise FileNotFoundError(f'Split file {split_file} does not exist')
    try:
        with open(split_file) as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'Split file {split_file} is not valid JSON: {e}') \
            from e
    if not isinstance(raw, dict) or 'train' not in raw:
        raise ValueError(f'Split file {split_file} must be a JSON object '
                         'with a "train" list (and "val", "test"), got '
                         f'{raw!r:.200}')
    unknown_keys = set(raw) - set(SPLITS) - {'seed', 'note'}
    if unknown_keys:
        raise ValueError(f'Split file {split_file} has unknown keys '
                         f'{sorted(unknown_keys)}; use {list(SPLITS)}')
    split, seen = {}, {}
    available = set(case_ids)
    for name in SPLITS:
        values = raw.get(name, [])
        if not isinstance(values, list):
            raise ValueError(f'{split_file}: "{name}" must be a list')
        ids = [_case_id(v, split_file) for v in values]
        for case in ids:
            if case in seen:
                raise ValueError(f'{split_file}: {case} is in both '
                                 f'"{seen[case]}" and "{name}"')
            seen[case] = name
        missing = [c for c in ids if c not in available]
        if missing:
            raise ValueError(
                f'{split_file}: {len(missing)} cases of "{name}" are not in '
                f'the data folder, e.g. {missing[:5]}')
        split[name] = ids
    if not split['train']:
        raise ValueError(f'{split_file}: "train" is empty')
    return split


def prepare_case(case_id: str,
                 image_path: str,
                 label_path: str,
                 out_dir: str,
                 spacing_z: Optional[float] = 1.,
                 window: Sequence[float] = LITS_HU_WINDOW,
                 foreground_labels: Sequence[int] = (1, 2),
                 compress: bool = False,
                 affine_tol: float = 1e-3) -> dict:
    """Preprocess one case and write its image, label and meta json.

    Returns:
        dict: The meta information written to ``meta/<case_id>.json``.
    """
    image = read_nifti(image_path)
    label = read_nifti(label_path)
    if image.shape != label.shape:
        raise ValueError(
            f'{image_path} (D, H, W) = {image.shape} and '
            f'{label_path} {label.shape} differ in shape')
    diff = np.abs(image.affine - label.affine).max()
    if diff > affine_tol:
        raise ValueError(
            f'The affines of {image_path} and {label_path} differ by up to '
            f'{diff:.4g} (> --affine-tol {affine_tol}):\n'
            f'{image.affine}\nvs\n{label.affine}')
    if not np.issubdtype(image.array.dtype, np.number):
        raise ValueError(
            f'{image_path} has non-numeric dtype {image.array.dtype}')
    prepared = preprocess_ct_image(image, window, spacing_z)
    # the label on the image's grid (their affines agree within the tol)
    mask = preprocess_label(
        label.with_array(label.array, image.affine), foreground_labels,
        spacing_z)
    if mask.geometry != prepared.geometry:  # one grid by construction
        raise RuntimeError(f'{case_id}: image and label grids differ after '
                           'preprocessing')
    suffix = '.nii.gz' if compress else '.nii'
    number = case_id.split('-')[-1]
    out_image = osp.join(out_dir, 'images', case_id + suffix)
    out_label = osp.join(out_dir, 'labels', f'segmentation-{number}{suffix}')
    write_nifti(prepared, out_image)
    write_nifti(mask, out_label)
    meta = dict(
        case_id=case_id,
        image=osp.relpath(out_image, out_dir),
        label=osp.relpath(out_label, out_dir),
        source_image=osp.abspath(image_path),
        source_label=osp.abspath(label_path),
        original=image.geometry,
        prepared=prepared.geometry,
        window=[float(w) for w in window],
        spacing_z=spacing_z,
        foreground_labels=[int(v) for v in foreground_labels],
        intensity='uint8 = round((clip(HU, low, high) - low) / (high - low)'
        ' * 255), slices interpolated linearly',
        num_foreground=int(mask.array.sum()),
        source_labels={
            str(int(v)): int(n)
            for v, n in zip(*np.unique(label.array, return_counts=True))
        })
    meta_path = osp.join(out_dir, 'meta', case_id + '.json')
    os.makedirs(osp.dirname(meta_path), exist_ok=True)
    with open(meta_path, 'w') as f:
        json.dump(meta, f, indent=1)
    return meta


def _prepare_star(kwargs: dict) -> dict:
    return prepare_case(**kwargs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Prepare LiTS volumes (HU window, 1 mm slices, liver = '
        'labels 1 + 2) and a train/val/test split for svd_mm.datasets.'
        'LiTSDataset')
    parser.add_argument('data_dir', help='folder with volume-N.nii and '
                        'segmentation-N.nii (searched recursively)')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--split-file',
        help='JSON {"train": [...], "val": [...], "test": [...]} with case '
        'ids ("volume-N" or N) instead of the seeded random split')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random split')
    parser.add_argument(
        '--spacing-z',
        type=float,
        default=1.,
        help='slice spacing of the prepared volumes in mm (default: 1)')
    parser.add_argument(
        '--window',
        type=float,
        nargs=2,
        default=LITS_HU_WINDOW,
        metavar=('LOW', 'HIGH'),
        help='HU window mapped onto [0, 255] (default: -200 250)')
    parser.add_argument(
        '--compress',
        action='store_true',
        help='write .nii.gz (smaller, slower to load) instead of .nii')
    parser.add_argument(
        '--affine-tol',
        type=float,
        default=1e-3,
        help='largest allowed difference between the affines of a volume '
        'and its label (default: 1e-3)')
    parser.add_argument(
        '--nproc', type=int, default=1, help='parallel processes')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cases = find_cases(args.data_dir)
    if args.split_file:
        split = read_split_file(args.split_file, list(cases))
        split_info = dict(source=osp.abspath(args.split_file))
    else:
        split = make_split(list(cases), args.seed)
        split_info = dict(seed=args.seed)
    jobs = [
        dict(
            case_id=case_id,
            image_path=paths['image'],
            label_path=paths['label'],
            out_dir=args.out_dir,
            spacing_z=args.spacing_z,
            window=tuple(args.window),
            compress=args.compress,
            affine_tol=args.affine_tol) for case_id, paths in cases.items()
    ]
    os.makedirs(args.out_dir, exist_ok=True)
    if args.nproc > 1:
        with Pool(args.nproc) as pool:
            metas = pool.map(_prepare_star, jobs, chunksize=1)
    else:
        metas = [_prepare_star(job) for job in jobs]
    for meta in metas:
        print(f"{meta['case_id']}: {tuple(meta['original']['shape'])} at "
              f"{meta['original']['spacing'][0]:.3g} mm -> "
              f"{tuple(meta['prepared']['shape'])}, "
              f"{meta['num_foreground']} liver voxels")
    split_path = osp.join(args.out_dir, 'split.json')
    with open(split_path, 'w') as f:
        json.dump(dict(split, **split_info), f, indent=1)
    print(f'{len(metas)} cases -> {args.out_dir}; split ' + ', '.join(
        f'{name} {len(split[name])}' for name in SPLITS) + f' -> {split_path}')
    return split


if __name__ == '__main__':
    main(sys.argv[1:])
