"""A LiTS-layout mini set of raw NIfTI volumes made from real chest CTs.

The LiTS training set (131 abdominal CTs, about 50 GB) cannot be fetched by
package name, so svd_mm's tests lay the two real chest CTs with lesion masks
of the ``pyradiomics`` sdist (see
:func:`tests.helpers.data_cache.fetch_pyradiomics_ct`) out as LiTS ships its
training data:

.. code-block:: none

    out_dir/
    ├── volume-0.nii            # CT in HU (int16), NIfTI-1, RAS affine
    ├── segmentation-0.nii      # 0 background, 1 "liver", 2 "tumour"
    ├── volume-1.nii
    └── ...

Each CT gives one case per in-plane step (by default ``2``: a
full-resolution in-plane crop around its lesion and a crop subsampled by 2
in-plane, twice the pixel spacing). ``in_plane_size=512``, ``steps=(1, )``
and a large ``slice_margin`` keep the whole CT (512 x 512, all slices). The
slices are cut to the lesion's slices plus a margin; the slice spacing
(5 mm) is the CT's. The lesion mask stands in for the liver: its upper half
(by slice) is written as 2 ("tumour") and the rest as 1, so that the
preparation's merge of labels 1 and 2 is exercised. The affine is the
NRRD's geometry (LPS) converted to NIfTI's RAS.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from svd_mm.utils.medical_io import read_volume
from svd_mm.utils.volume_io import Volume, write_nifti

from .data_cache import fetch_pyradiomics_ct

__all__ = ['build_lits_layout_from_ct']


def _read_nrrd(path: str):
    """(x, y, z) array and the (4, 4) RAS affine of a NRRD file."""
    volume = read_volume(path, dtype=None)
    return volume.array.transpose(2, 1, 0), volume.affine


def build_lits_layout_from_ct(out_dir: str,
                              in_plane_size: int = 96,
                              slice_margin: int = 3,
                              steps: Sequence[int] = (1, 2)
                              ) -> Dict[str, List]:
    """Write LiTS-named raw NIfTI volumes and labels cut from real CT.

    Args:
        out_dir (str): Output folder (created).
        in_plane_size (int): Width and height of every case, in voxels.
            Defaults to 96.
        slice_margin (int): Slices kept above and below the lesion.
            Defaults to 3.
        steps (Sequence[int]): In-plane subsampling of the cases of each
            CT; ``in_plane_size * step`` must fit in the CT's 512 voxels.
            Defaults to (1, 2).

    Returns:
        dict: ``cases``, a list of dicts with ``case_id`` (``volume-N``),
        ``image`` and ``label`` (paths), ``source`` (CT name), ``step``
        (in-plane subsampling), ``shape`` ((D, H, W) of the file) and
        ``num_tumour`` / ``num_liver`` (voxels labelled 2 / 1).
    """
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for ct in fetch_pyradiomics_ct():
        image, affine = _read_nrrd(ct['image'])
        label, label_affine = _read_nrrd(ct['label'])
        if image.shape != label.shape or not np.allclose(
                affine, label_affine):
            raise ValueError(f"{ct['image']} and {ct['label']} are not on "
                             'one grid')
        voxels = np.argwhere(label > 0)  # (x, y, z)
        low, high = voxels.min(0), voxels.max(0)
        centre = (low + high) // 2
        z0 = max(int(low[2]) - slice_margin, 0)
        z1 = min(int(high[2]) + slice_margin + 1, image.shape[2])
        for step in steps:
            extent = in_plane_size * step
            if extent > min(image.shape[:2]):
                raise ValueError(
                    f'in_plane_size {in_plane_size} x step {step} does not '
                    f'fit in the {image.shape[:2]} in-plane grid of '
                    f"{ct['image']}")
            start = [
                int(np.clip(centre[a] - extent // 2, 0,
                            image.shape[a] - extent)) for a in (0, 1)
            ]
            window = (slice(start[0], start[0] + extent, step),
                      slice(start[1], start[1] + extent, step),
                      slice(z0, z1))
            crop_image = image[window].astype(np.int16)
            crop_label = (label[window] > 0).astype(np.uint8)
            # upper half of the lesion's slices: "tumour" (2)
            lesion_z = np.nonzero(crop_label.any((0, 1)))[0]
            middle = (lesion_z.min() + lesion_z.max() + 1) // 2
            crop_label[:, :, middle:] *= 2
            crop_affine = affine.copy()
            crop_affine[:3, 3] = affine[:3, :3] @ np.array(
                [start[0], start[1], z0], float) + affine[:3, 3]
            crop_affine[:3, :2] *= step
            index = len(cases)
            image_path = osp.join(out_dir, f'volume-{index}.nii')
            label_path = osp.join(out_dir, f'segmentation-{index}.nii')
            # a Volume is (D, H, W) = (z, y, x)
            write_nifti(Volume(crop_image.transpose(2, 1, 0), crop_affine),
                        image_path)
            write_nifti(Volume(crop_label.transpose(2, 1, 0), crop_affine),
                        label_path)
            cases.append(
                dict(
                    case_id=f'volume-{index}',
                    image=image_path,
                    label=label_path,
                    source=ct['name'],
                    step=step,
                    shape=list(crop_image.shape[::-1]),
                    num_tumour=int((crop_label == 2).sum()),
                    num_liver=int((crop_label == 1).sum())))
    return dict(cases=cases)
