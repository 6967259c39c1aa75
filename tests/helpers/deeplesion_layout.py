"""A DeepLesion-layout mini set made from real chest CTs.

The NIH DeepLesion data (about 220 GB) cannot be fetched by package name, so
svd_mm's tests and demo lay the two real chest CTs with lesion masks of the
``pyradiomics`` sdist (see
:func:`tests.helpers.data_cache.fetch_pyradiomics_ct`) out exactly as
DeepLesion ships its data:

.. code-block:: none

    out_dir/
    ├── DL_info.csv              # DeepLesion's 18 columns, one row/lesion
    └── Images_png/
        ├── 000001_01_01/        # <patient>_<study>_<series>
        │   ├── 028.png          # 16-bit PNG, HU + 32768
        │   └── ...
        └── 000002_01_01/
            └── ...

Every value comes from the CT files: the key slice is the slice where the
lesion mask is largest, the box is the mask's extent on that slice, the
RECIST-like long and short axes are measured on the mask, and the spacing
is the NRRD's. Unknown DeepLesion fields (patient sex and age) are left
empty; ``DICOM_windows``, which the NRRDs do not hold, is a lung window.
"""
import csv
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from svd_mm.utils.medical_io import read_volume

from .data_cache import fetch_pyradiomics_ct

__all__ = ['DL_INFO_COLUMNS', 'build_deeplesion_layout_from_ct']

#: The header of DeepLesion's ``DL_info.csv``.
DL_INFO_COLUMNS = [
    'File_name', 'Patient_index', 'Study_index', 'Series_ID',
    'Key_slice_index', 'Measurement_coordinates', 'Bounding_boxes',
    'Lesion_diameters_Pixel_', 'Normalized_lesion_location',
    'Coarse_lesion_type', 'Possibly_noisy', 'Slice_range', 'Spacing_mm_px_',
    'Image_size', 'DICOM_windows', 'Patient_gender', 'Patient_age',
    'Train_Val_Test'
]

#: DeepLesion's coarse lesion type of lung lesions (1 bone, 2 abdomen,
#: 3 mediastinum, 4 liver, 5 lung, 6 kidney, 7 soft tissue, 8 pelvis); the
#: training split has -1 (unlabelled), as in DeepLesion.
LUNG_TYPE = 5
HU_OFFSET = 32768


def _fmt(values) -> str:
    return ', '.join(f'{v:.10g}' if isinstance(v, float) else str(v)
                     for v in values)


def _recist_axes(mask: np.ndarray) -> np.ndarray:
    """Long and short axis end points of a 2D mask, RECIST-like.

    The long axis joins the two farthest mask pixels (centres); the short
    axis is the longest chord perpendicular to it (one pixel wide bins
    along the long axis).

    Returns:
        np.ndarray: (4, 2) as (x, y): long axis ends, then short axis ends.
    """
    ys, xs = np.nonzero(mask)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    # the farthest pair lies on the boundary
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    edge = mask & (inner == 0)
    by, bx = np.nonzero(edge)
    border = np.stack([bx, by], axis=1).astype(np.float64)
    dist = np.linalg.norm(border[:, None] - border[None], axis=-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    p1, p2 = border[i], border[j]
    if dist[i, j] == 0:  # a one-pixel lesion
        return np.stack([p1, p1, p1, p1])
    u = (p2 - p1) / dist[i, j]
    n = np.array([-u[1], u[0]])
    t = np.round((points - p1) @ u).astype(np.int64)
    s = (points - p1) @ n
    best, best_len = None, -1.
    for tb in np.unique(t):
        sel = s[t == tb]
        if sel.max() - sel.min() > best_len:
            best, best_len = (tb, sel.min(), sel.max()), sel.max() - sel.min()
    tb, s0, s1 = best
    q1 = p1 + tb * u + s0 * n
    q2 = p1 + tb * u + s1 * n
    return np.stack([p1, p2, q1, q2])


def build_deeplesion_layout_from_ct(out_dir: str,
                                    splits: Optional[Dict[str, int]] = None,
                                    context_mm: Optional[float] = 30.,
                                    cache_dir: Optional[str] = None) -> dict:
    """Write a DeepLesion-layout mini set from the real pyradiomics CTs.

    Each CT (``lung1``: 512x512x48, ``lung2``: 512x512x61, 5 mm slices) is
    one series of its own patient, with one lesion. The PNG of slice ``z``
    (0-based along the NRRD's third axis) is ``Images_png/<patient>_01_01/
    {z + 1:03d}.png``: image rows are the NRRD's second (y, posterior) axis
    and columns its first (x) axis. Only the slices within ``context_mm`` of
    the key slice are written (DeepLesion, too, ships a sub-volume around
    each key slice), and ``Slice_range`` lists them.

    Args:
        out_dir (str): Destination folder (created).
        splits (dict[str, int], optional): ``Train_Val_Test`` value (1
            train, 2 val, 3 test) of each case. Defaults to
            ``{'lung1': 1, 'lung2': 3}``.
        context_mm (float, optional): Half-height of the written sub-volume
            in mm; None writes the whole series. Defaults to 30.
        cache_dir (str, optional): svd_mm data cache folder.

    Returns:
        dict: ``data_root``, ``dl_info`` (csv path), ``images_dir`` and
        ``cases``: per CT a dict with ``name``, ``folder``, ``key_slice``,
        ``slice_range``, ``spacing`` (sx, sy, sz), ``bbox`` (x1, y1, x2, y2),
        ``split`` and ``image_size`` (height, width).
    """
    if splits is None:
        splits = {'lung1': 1, 'lung2': 3}
    out = Path(out_dir)
    images_dir = out / 'Images_png'
    images_dir.mkdir(parents=True, exist_ok=True)
    rows: List[dict] = []
    cases = []
    for patient, case in enumerate(fetch_pyradiomics_ct(cache_dir), 1):
        if case['name'] not in splits:
            continue
        split = int(splits[case['name']])
        if split not in (1, 2, 3):
            raise ValueError(f"splits[{case['name']!r}] must be 1, 2 or 3, "
                             f'but got {split}')
        volume = read_volume(case['image'], dtype=None)
        image = volume.array.transpose(2, 1, 0)  # (x, y, z)
        label = read_volume(
            case['label'], dtype=None).array.transpose(2, 1, 0)
        if image.shape != label.shape:
            raise ValueError(f"{case['image']} has shape {image.shape} but "
                             f"its mask {case['label']} has {label.shape}")
        spacing = list(volume.spacing[::-1])  # (sx, sy, sz)
        mask = label > 0
        areas = mask.sum(axis=(0, 1))
        key_z = int(np.argmax(areas))
        num_z = image.shape[2]
        if context_mm is None:
            first, last = 0, num_z - 1
        else:
            half = int(np.floor(context_mm / spacing[2]))
            first, last = max(0, key_z - half), min(num_z - 1, key_z + half)

        folder = f'{patient:06d}_01_01'
        (images_dir / folder).mkdir(exist_ok=True)
        for z in range(first, last + 1):
            png = (image[:, :, z].T.astype(np.int32) + HU_OFFSET).astype(
                np.uint16)
            path = images_dir / folder / f'{z + 1:03d}.png'
            if not cv2.imwrite(str(path), png):
                raise OSError(f'Could not write {path}')

        key_mask = mask[:, :, key_z].T  # (rows, cols) = (y, x)
        ys, xs = np.nonzero(key_mask)
        bbox = [float(xs.min()), float(ys.min()),
                float(xs.max() + 1), float(ys.max() + 1)]
        axes = _recist_axes(key_mask)
        diameters = [
            float(np.linalg.norm(axes[1] - axes[0])),
            float(np.linalg.norm(axes[3] - axes[2]))
        ]
        zs, = np.nonzero(areas)
        centre = [
            float(xs.mean() / image.shape[0]),
            float(ys.mean() / image.shape[1]),
            float(zs.mean() / num_z)
        ]
        height, width = image.shape[1], image.shape[0]
        rows.append({
            'File_name': f'{folder}_{key_z + 1:03d}.png',
            'Patient_index': patient,
            'Study_index': 1,
            'Series_ID': 1,
            'Key_slice_index': key_z + 1,
            'Measurement_coordinates': _fmt(
                [round(float(v), 4) for v in axes.reshape(-1)]),
            'Bounding_boxes': _fmt(bbox),
            'Lesion_diameters_Pixel_': _fmt(
                [round(d, 4) for d in diameters]),
            'Normalized_lesion_location': _fmt(
                [round(c, 6) for c in centre]),
            'Coarse_lesion_type': -1 if split == 1 else LUNG_TYPE,
            'Possibly_noisy': 0,
            'Slice_range': _fmt([first + 1, last + 1]),
            'Spacing_mm_px_': _fmt(spacing),
            'Image_size': _fmt([height, width]),
            'DICOM_windows': _fmt([-1350, 150]),
            'Patient_gender': '',
            'Patient_age': '',
            'Train_Val_Test': split,
        })
        cases.append(
            dict(
                name=case['name'],
                folder=folder,
                key_slice=key_z + 1,
                slice_range=(first + 1, last + 1),
                spacing=tuple(spacing),
                bbox=tuple(bbox),
                split=split,
                image_size=(height, width)))
    if not rows:
        raise ValueError(f'splits {splits} selects none of the CT cases '
                         "('lung1', 'lung2')")
    dl_info = out / 'DL_info.csv'
    with open(dl_info, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=DL_INFO_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return dict(
        data_root=str(out),
        dl_info=str(dl_info),
        images_dir=osp.join(str(out), 'Images_png'),
        cases=cases)
