"""NIH DeepLesion as an mmdet dataset. Importing this module needs mmdet."""
import os.path as osp
from typing import List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

__all__ = ['DeepLesionDataset']


@DATASETS.register_module()
class DeepLesionDataset(CocoDataset):
    """NIH DeepLesion universal lesion detection (one class, ``lesion``).

    Reads a COCO-style annotation json, as written from ``DL_info.csv`` by
    ``tools/dataset_converters/prepare_deeplesion.py`` (one json per
    official split) or by users for their own data. Each image is the key
    slice of a CT series; besides the COCO fields (``id``, ``file_name``,
    ``width``, ``height``) it must have the fields that
    :class:`~svd_mm.datasets.transforms.LoadDeepLesionSlices` needs to load
    its neighbouring slices::

        data_root/
        ├── Images_png/                      # data_prefix=dict(img=...)
        │   ├── 000001_01_01/
        │   │   ├── 103.png                  # 16-bit PNG, HU + 32768
        │   │   ├── ...
        │   │   └── 115.png
        │   └── ...
        └── annotations/
            ├── deeplesion_train.json
            ├── deeplesion_val.json
            └── deeplesion_test.json

    ============  =======================================================
    image field   meaning
    ============  =======================================================
    file_name     key slice path under ``data_prefix['img']``, e.g.
                  ``000001_01_01/109.png``
    slice_intv    slice interval (z spacing) of the series in mm
    slice_range   ``[first, last]`` slice index present in the folder
    spacing       ``[sx, sy, sz]`` in mm (optional)
    key_slice     key slice index (optional; defaults to the file name)
    ============  =======================================================

    Annotations are COCO boxes ``[x, y, w, h]`` in pixels with
    ``category_id`` 1; ``iscrowd: 1`` marks a lesion to ignore (e.g. a
    "possibly noisy" one). A box that is not inside its image raises an
    error instead of being dropped silently.

    Each data info holds the keys of ``CocoDataset`` plus ``slice_intv``,
    ``slice_range``, ``spacing`` and ``key_slice``.

    Args:
        *args: Arguments of :class:`mmdet.datasets.CocoDataset`
            (``ann_file``, ``data_root``, ``data_prefix``, ``pipeline``,
            ``test_mode``, ``filter_cfg``, ...).
        **kwargs: Keyword arguments of
            :class:`mmdet.datasets.CocoDataset`.
    """

    METAINFO = {'classes': ('lesion', ), 'palette': [(220, 20, 60)]}

    REQUIRED_IMAGE_FIELDS = ('file_name', 'width', 'height', 'slice_intv',
                             'slice_range')

    def load_data_list(self) -> List[dict]:
        """Load the annotation json; an image-less json is an error.

        Returns:
            list[dict]: One data info per key slice.
        """
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(
                f'{self.ann_file} holds no image; {self.__class__.__name__} '
                'needs at least one key slice')
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Parse one image and its annotations, with the slice fields.

        Args:
            raw_data_info (dict): ``raw_img_info`` and ``raw_ann_info`` of
                one image.

        Returns:
            dict: The parsed data info.
        """
        img_info = raw_data_info['raw_img_info']
        name = img_info.get('file_name', f"id {img_info.get('id')}")
        missing = [
            k for k in self.REQUIRED_IMAGE_FIELDS if img_info.get(k) is None]
        if missing:
            raise KeyError(
                f'Image {name} in {self.ann_file} lacks the field(s) '
                f'{missing}; {self.__class__.__name__} needs '
                f'{list(self.REQUIRED_IMAGE_FIELDS)} per image (see '
                'tools/dataset_converters/prepare_deeplesion.py)')
        slice_intv = float(img_info['slice_intv'])
        if not slice_intv > 0:
            raise ValueError(f'Image {name} in {self.ann_file} has '
                             f'slice_intv {slice_intv}; it must be positive')
        slice_range = [int(v) for v in img_info['slice_range']]
        if len(slice_range) != 2 or slice_range[0] > slice_range[1]:
            raise ValueError(
                f'Image {name} in {self.ann_file} has slice_range '
                f"{img_info['slice_range']}; expected [first, last]")
        key_slice = img_info.get('key_slice')
        if key_slice is None:
            stem = osp.splitext(osp.basename(img_info['file_name']))[0]
            if not stem.isdigit():
                raise ValueError(
                    f'Image {name} in {self.ann_file}: cannot read the key '
                    'slice index from the file name; add a key_slice field')
            key_slice = int(stem)
        if not slice_range[0] <= int(key_slice) <= slice_range[1]:
            raise ValueError(
                f'Image {name} in {self.ann_file}: key slice {key_slice} is '
                f'outside its slice_range {slice_range}')
        width, height = img_info['width'], img_info['height']
        for ann in raw_data_info['raw_ann_info']:
            x, y, w, h = ann['bbox']
            if not (x >= 0 and y >= 0 and w > 0 and h > 0
                    and x + w <= width and y + h <= height):
                raise ValueError(
                    f"Box {ann['bbox']} (xywh, annotation id {ann.get('id')}"
                    f') of image {name} in {self.ann_file} is not inside the '
                    f'{width}x{height} (width x height) image')

        data_info = super().parse_data_info(raw_data_info)
        spacing = img_info.get('spacing')
        data_info.update(
            slice_intv=slice_intv,
            slice_range=slice_range,
            spacing=None if spacing is None else [float(v) for v in spacing],
            key_slice=int(key_slice))
        return data_info
