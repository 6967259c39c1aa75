"""A LIDC-IDRI-layout mini dataset cut from real chest CT.

The LIDC-IDRI nodule release used by ACS and SVD-Net cannot be fetched by
package name, so svd_mm's tests and demo build a small stand-in with the
same layout and the same preprocessing from the two real chest CTs with
lesion masks shipped in the ``pyradiomics`` sdist (see
:func:`tests.helpers.data_cache.fetch_pyradiomics_ct`).
"""
import csv
import os
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from svd_mm.utils.medical_io import read_volume
from svd_mm.utils.volume_io import LIDC_RELEASE_WINDOW

from .data_cache import fetch_pyradiomics_ct

__all__ = ['build_lidc_layout_from_ct']

SPLIT_FILE = 'train_test_split.csv'
INFO_FILE = osp.join('info', 'lidc_nodule_info_new_with_subset.csv')
NODULE_DIR = 'nodule'

# Malignancy written for the two kinds of crops (1-5 scale of LIDC-IDRI).
_MALIGNANCY = {'nodule': 5, 'background': 1}


def _read_ct(image_path: str, label_path: str):
    """Read a CT and its lesion mask as (z, y, x) arrays and the voxel
    spacing (z, y, x) in mm."""
    image = read_volume(image_path, dtype=None)
    label = read_volume(label_path, dtype=None)
    if image.shape != label.shape:
        raise ValueError(f'{image_path} {image.shape} and {label_path} '
                         f'{label.shape} are not one 3D grid')
    return image.array, label.array > 0, np.asarray(image.spacing)


def _lung_mask(image: np.ndarray) -> np.ndarray:
    """Lung voxels: air (< -500 HU) enclosed by the body in each slice."""
    body, num = ndimage.label(image > -500)
    if num == 0:
        raise ValueError('No tissue above -500 HU: not a CT in HU')
    sizes = np.bincount(body.ravel())
    sizes[0] = 0
    body = body == sizes.argmax()
    filled = np.stack([ndimage.binary_fill_holes(s) for s in body])
    lungs = filled & ~body
    # Keep centres off the lung wall.
    return ndimage.binary_erosion(
        lungs, structure=np.ones((1, 3, 3), bool), iterations=4)


def _resample(volume: np.ndarray, spacing: np.ndarray, centre: np.ndarray,
              size: int, out_spacing: float, order: int,
              cval: float) -> np.ndarray:
    """A size**3 crop at ``out_spacing`` mm whose centre (between the middle
    voxels for an even size) is the voxel coordinate ``centre`` of the
    float32 ``volume``."""
    offsets = (np.arange(size) - (size - 1) / 2.) * out_spacing
    grids = [centre[i] + offsets / spacing[i] for i in range(3)]
    coords = np.stack(np.meshgrid(*grids, indexing='ij'))
    return ndimage.map_coordinates(
        volume, coords, order=order, mode='constant', cval=cval)


def _window(hu: np.ndarray, window: Tuple[float, float]) -> np.ndarray:
    low, high = window
    grey = (hu - low) / (high - low) * 255.
    return np.round(np.clip(grey, 0, 255)).astype(np.uint8)


def _write_csv(path: Path, header: Sequence[str], rows: List[Sequence]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def build_lidc_layout_from_ct(out_dir: str,
                              size: int = 48,
                              spacing: float = 1.,
                              num_nodule_crops: int = 4,
                              num_background_crops: int = 4,
                              max_shift: int = 3,
                              num_test: int = 1,
                              window: Tuple[float,
                                            float] = LIDC_RELEASE_WINDOW,
                              seed: int = 0,
                              cache_dir: Optional[str] = None) -> Dict:
    """Build a mini LIDC-IDRI nodule dataset in the release's layout from
    real chest CT.

    Each of the two pyradiomics CTs (``lung1``: 512×512×48, ``lung2``:
    512×512×61, 0.57 / 0.63 mm pixels, 5 mm slices) has one lung lesion
    with a manual mask. From each case this writes

    - ``num_nodule_crops`` lesion-centred crops: centred on the lesion's
      centroid, the first exactly, the others shifted by up to
      ``max_shift`` voxels per axis; ``answer1`` is the real mask resampled
      to the crop; malignancy 5 (malignant).
    - ``num_background_crops`` crops centred on random lung voxels whose
      crop does not touch the lesion's bounding box; ``answer1`` (the mask
      resampled the same way) is empty; malignancy 1 (benign).

    Preprocessing follows the release (ACS's ``preprocess_voxel``): the CT
    is resampled to isotropic ``spacing`` mm with linear interpolation (the
    5 mm slices are interpolated along z; voxels outside the scan are
    -1024 HU), windowed to ``window`` HU and mapped linearly to uint8
    [0, 255]. Masks are interpolated linearly and thresholded at 0.5.
    Volumes are stored (D, H, W) = (z, y, x).

    The files follow the release:

    .. code-block:: none

        out_dir/
        ├── nodule/<case>_<kind><k>.npz   # voxel (uint8), answer1 (uint8)
        ├── train_test_split.csv          # columns train, test (names with
        │                                 # .npz, shorter column padded)
        └── info/lidc_nodule_info_new_with_subset.csv
            # index, malignancy, malignancy_mode, subset, source, kind,
            # center_z, center_y, center_x (voxel coordinates in the CT)

    Of each case's crops of each kind the first ``num_test`` (for nodules:
    the unshifted crop first) go to the ``test`` column, the rest to
    ``train``. With two lesions, test crops overlap train crops of the same
    lesion: the set checks that data flows and that a model can fit real
    CT, not generalisation.

    Args:
        out_dir (str): Destination folder (created).
        size (int): Edge of the cubic crops in voxels. Defaults to 48.
        spacing (float): Voxel size of the crops in mm. Defaults to 1.
        num_nodule_crops (int): Lesion crops per case. Defaults to 4.
        num_background_crops (int): Background crops per case.
            Defaults to 4.
        max_shift (int): Largest shift of the lesion crops, in output
            voxels per axis. Defaults to 3.
        num_test (int): Crops per case and kind in the test split.
            Defaults to 1.
        window (tuple[float, float]): HU window mapped to [0, 255].
            Defaults to (-1024, 400), the window of the release.
        seed (int): Seed of the shifts and background positions.
            Defaults to 0.
        cache_dir (str, optional): svd_mm data cache folder.

    Returns:
        dict: ``data_root``, ``ann_file``, ``info_file``, ``data_prefix``
        (relative to ``data_root``), ``train`` and ``test`` (lists of file
        names), ``labels`` (name -> 0 benign / 1 malignant), ``size``,
        ``spacing`` and ``window``.
    """
    if size < 8:
        raise ValueError(f'size must be >= 8 voxels, but got {size}')
    if spacing <= 0:
        raise ValueError(f'spacing must be > 0 mm, but got {spacing}')
    for name, num in (('num_nodule_crops', num_nodule_crops),
                      ('num_background_crops', num_background_crops)):
        if num < 1:
            raise ValueError(f'{name} must be >= 1, but got {num}')
        if not 0 <= num_test < num:
            raise ValueError(f'num_test must be in [0, {name}), but got '
                             f'{num_test}')
    if not 0 <= max_shift < size // 2:
        raise ValueError(f'max_shift must be in [0, {size // 2}), but got '
                         f'{max_shift}')
    if not window[0] < window[1]:
        raise ValueError(f'window must be (low, high), but got {window}')

    out = Path(out_dir)
    (out / NODULE_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    half_mm = size * spacing / 2.
    splits = {'train': [], 'test': []}
    info_rows, labels = [], {}

    def _write(name, voxel, mask, kind, case, centre, index):
        split = 'test' if index < num_test else 'train'
        fname = f'{name}.npz'
        np.savez_compressed(
            out / NODULE_DIR / fname, voxel=voxel, answer1=mask)
        splits[split].append(fname)
        malignancy = _MALIGNANCY[kind]
        labels[fname] = int(malignancy > 3)
        info_rows.append([
            name, malignancy, malignancy, split, case, kind,
            *[f'{c:.2f}' for c in centre]
        ])

    for case in fetch_pyradiomics_ct(cache_dir):
        image, lesion, ct_spacing = _read_ct(case['image'], case['label'])
        shape = np.array(image.shape)
        hu = image.astype(np.float32)
        lesion_f = lesion.astype(np.float32)
        if not lesion.any():
            raise ValueError(f'{case["label"]} marks no lesion')
        centroid = np.array(ndimage.center_of_mass(lesion))
        # Lesion crops.
        for k in range(num_nodule_crops):
            shift = np.zeros(3) if k == 0 else rng.integers(
                -max_shift, max_shift + 1, size=3)
            centre = centroid + shift * spacing / ct_spacing
            voxel = _window(
                _resample(hu, ct_spacing, centre, size, spacing, 1, -1024.),
                window)
            mask = _resample(lesion_f, ct_spacing, centre, size, spacing, 1,
                             0.) >= 0.5
            _write(f'{case["name"]}_nodule{k}', voxel, mask.astype(np.uint8),
                   'nodule', case['name'], centre, k)
        # Background crops: lung centres whose box stays in the scan and
        # clear of the lesion's bounding box grown by one CT voxel (the
        # reach of linear interpolation).
        coords = np.argwhere(lesion)
        les_lo = (coords.min(0) - 1) * ct_spacing
        les_hi = (coords.max(0) + 1) * ct_spacing
        lungs = _lung_mask(image)
        cand = np.argwhere(lungs)
        mm = cand * ct_spacing
        inside = ((mm - half_mm >= 0) &
                  (mm + half_mm <= (shape - 1) * ct_spacing)).all(1)
        clear = ((mm + half_mm < les_lo) | (mm - half_mm > les_hi)).any(1)
        cand = cand[inside & clear]
        if len(cand) < num_background_crops:
            raise RuntimeError(
                f'{case["name"]}: only {len(cand)} lung positions leave a '
                f'{size * spacing:g} mm crop clear of the lesion; use a '
                'smaller size or spacing')
        picks = cand[rng.choice(len(cand), num_background_crops, False)]
        for k, centre in enumerate(picks.astype(np.float64)):
            voxel = _window(
                _resample(hu, ct_spacing, centre, size, spacing, 1, -1024.),
                window)
            mask = _resample(lesion_f, ct_spacing, centre, size, spacing, 1,
                             0.) >= 0.5
            _write(f'{case["name"]}_background{k}', voxel,
                   mask.astype(np.uint8), 'background', case['name'], centre,
                   k)

    rows = []
    for i in range(max(len(v) for v in splits.values())):
        rows.append([
            splits[s][i] if i < len(splits[s]) else ''
            for s in ('train', 'test')
        ])
    _write_csv(out / SPLIT_FILE, ['train', 'test'], rows)
    _write_csv(out / INFO_FILE, [
        'index', 'malignancy', 'malignancy_mode', 'subset', 'source', 'kind',
        'center_z', 'center_y', 'center_x'
    ], info_rows)
    return dict(
        data_root=os.fspath(out),
        ann_file=SPLIT_FILE,
        info_file=INFO_FILE,
        data_prefix=NODULE_DIR,
        train=splits['train'],
        test=splits['test'],
        labels=labels,
        size=size,
        spacing=spacing,
        window=tuple(window))
