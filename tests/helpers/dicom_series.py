"""DICOM series for tests, made of copies of one real slice file."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

__all__ = ['pydicom_test_file', 'dicom_series_from']


def pydicom_test_file(name: str) -> str:
    """The path of a DICOM test file of pydicom or of pydicom-data
    (``requirements/tests.txt``), never downloaded.

    Args:
        name (str): File name, e.g. ``'MR_small_jpeg_ls_lossless.dcm'``.

    Returns:
        str: The installed file.
    """
    from pydicom.data import get_testdata_file
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(
            f'DICOM test file {name} is neither in pydicom nor in '
            'pydicom-data; pip install -r requirements/tests.txt')
    return str(path)


def dicom_series_from(source: str,
                      folder: str,
                      slices: Sequence[int] = (2, 0, 1),
                      gap: float = 2.,
                      series_uid: Optional[str] = None) -> List[str]:
    """Write copies of one DICOM slice as a series: copy ``n`` is moved
    ``slices[n] * gap`` mm along the slice normal; the pixel data (and its
    transfer syntax, e.g. JPEG-LS) stay as they are.

    Args:
        source (str): A single-frame DICOM file.
        folder (str): Output folder; created.
        slices (Sequence[int]): Slice index of each file, in file order.
            Defaults to (2, 0, 1).
        gap (float): Slice spacing in mm. Defaults to 2.
        series_uid (str, optional): SeriesInstanceUID. Defaults to None (a
            new one).

    Returns:
        list[str]: The files, in the order of ``slices``.
    """
    import pydicom
    from pydicom.uid import generate_uid
    os.makedirs(folder, exist_ok=True)
    uid = series_uid or generate_uid()
    files = []
    for n, k in enumerate(slices):
        ds = pydicom.dcmread(source)
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        normal = np.cross(iop[:3], iop[3:])
        ds.ImagePositionPatient = [float(v) for v in ipp + k * gap * normal]
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = uid
        files.append(osp.join(folder, f'IM{n:04d}.dcm'))
        ds.save_as(files[-1])
    return files
