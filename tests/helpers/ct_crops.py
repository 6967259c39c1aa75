"""Crops of the real pyradiomics chest CTs around their lesions, for the
tests of readers, writers and inference."""
from typing import Optional, Sequence, Tuple

import numpy as np

from svd_mm.utils.volume_io import Volume

from .data_cache import fetch_pyradiomics_ct

__all__ = ['lesion_crop']


def lesion_crop(shape: Sequence[int],
                case: int = 0,
                cache_dir: Optional[str] = None) -> Tuple[Volume, Volume]:
    """A (D, H, W) ``shape`` crop of a pyradiomics CT centred on its lesion.

    The crop starts ``shape // 2`` voxels before the lesion's centre (the
    mean voxel index of its mask, rounded down) and keeps the CT's
    geometry: its affine is the CT's with the origin moved to the crop's
    first voxel.

    Args:
        shape (Sequence[int]): (D, H, W) of the crop.
        case (int): 0 for ``lung1``, 1 for ``lung2``. Defaults to 0.
        cache_dir (str, optional): Cache of the fetched sdist.
            Defaults to None (the default cache).

    Returns:
        tuple[Volume, Volume]: The CT crop (float32 HU) and its lesion mask
        (float32 0 / 1), on the same grid, made in memory (no ``source``).
    """
    from svd_mm.utils.medical_io import read_volume
    files = fetch_pyradiomics_ct(cache_dir)[case]
    volume = read_volume(files['image'])
    label = read_volume(files['label']).array
    centre = (int(v) for v in np.argwhere(label > 0).mean(0))
    origin = [c - s // 2 for c, s in zip(centre, shape)]
    if min(origin) < 0 or any(
            o + s > n for o, s, n in zip(origin, shape, volume.shape)):
        raise ValueError(f'A {tuple(shape)} crop around the lesion of '
                         f"{files['image']} leaves its {volume.shape} grid")
    affine = volume.affine.copy()
    affine[:3, 3] = volume.dhw_to_ras(origin)
    window = tuple(slice(o, o + s) for o, s in zip(origin, shape))
    return Volume(volume.array[window], affine), Volume(label[window], affine)
