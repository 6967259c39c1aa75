"""A real photo with a real semantic map, laid out as mmseg's ADE20K.

The ``terrain2`` photo of the ``sahi==0.12.8`` sdist (1024 x 682, five
off-road cars, fetched by :func:`tests.helpers.data_cache.fetch_sahi_coco`)
has a COCO annotation with one polygon per car. Rasterised, the polygons
give a two-class semantic map: ``car`` inside them and ``earth`` (the
terrain, bushes and sky) everywhere else, both in ADE20K's 150-class label
space. Written in ADE20K's folder layout, it trains and tests through the
real ADE20K configs with ``metainfo=dict(classes=CLASSES)``: mmseg's
``ADE20KDataset`` maps the two ADE classes to 0 and 1.
"""
import json
import os.path as osp
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from tests.helpers.data_cache import fetch_sahi_coco

__all__ = ['CLASSES', 'rasterise_coco', 'layout_terrain2_ade20k']

# The ADE20K classes of the map (``earth`` is ADE class 13, ``car`` 20).
CLASSES = ('earth', 'car')


def rasterise_coco(ann_file: str, label_of: dict, background: int) -> dict:
    """Rasterise the polygons of a one-image COCO file into a label map.

    Args:
        ann_file (str): COCO json with one image.
        label_of (dict): COCO category name to label value.
        background (int): Label of the pixels outside every polygon.

    Returns:
        dict: ``file_name`` (of the image) and ``label_map`` (uint8
        (H, W)); later annotations are drawn over earlier ones.
    """
    with open(ann_file) as f:
        coco = json.load(f)
    if len(coco.get('images', [])) != 1:
        raise ValueError(f'{ann_file} must describe exactly one image, but '
                         f"has {len(coco.get('images', []))}")
    image = coco['images'][0]
    height, width = image['height'], image['width']
    names = {c['id']: c['name'] for c in coco['categories']}
    label_map = np.full((height, width), background, dtype=np.uint8)
    for ann in coco['annotations']:
        name = names[ann['category_id']]
        if name not in label_of:
            raise KeyError(f'{ann_file}: category {name!r} has no label in '
                           f'{sorted(label_of)}')
        rles = mask_utils.frPyObjects(ann['segmentation'], height, width)
        inside = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        label_map[inside] = label_of[name]
    return dict(file_name=image['file_name'], label_map=label_map)


def layout_terrain2_ade20k(out_dir: str,
                           cache_dir: Optional[str] = None) -> dict:
    """Write the terrain2 photo and its map in ADE20K's layout.

    ``out_dir/images/{training,validation}/terrain2.jpg`` (JPEG, quality
    95, as ADE20K's images) and ``out_dir/annotations/{training,validation}
    /terrain2.png`` (uint8, ADE20K's values: class index + 1, 0 for
    "other", which ``reduce_zero_label`` ignores). The same photo is both
    splits: the tests measure fitting, not generalisation.

    Args:
        out_dir (str): Destination folder (created).
        cache_dir (str, optional): Data cache folder, see
            :func:`tests.helpers.data_cache.get_cache_dir`.

    Returns:
        dict: ``data_root``, ``classes`` (:data:`CLASSES`), ``shape``
        ((H, W) of the photo) and ``pixels`` (class name to pixel count).
    """
    from mmseg.datasets import ADE20KDataset
    ade_classes = ADE20KDataset.METAINFO['classes']
    values = {name: ade_classes.index(name) + 1 for name in CLASSES}
    data = fetch_sahi_coco(cache_dir)
    raster = rasterise_coco(
        data['ann_file'], {'car': values['car']}, background=values['earth'])
    if raster['file_name'] != osp.basename(data['image']):
        raise ValueError(f"{data['ann_file']} describes "
                         f"{raster['file_name']}, not {data['image']}")
    image = cv2.imread(data['image'], cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != raster['label_map'].shape:
        raise ValueError(f"{data['image']} cannot be read or does not have "
                         f"the (H, W) {raster['label_map'].shape} of "
                         f"{data['ann_file']}")
    out = Path(out_dir)
    stem = osp.splitext(raster['file_name'])[0]
    for split in ('training', 'validation'):
        (out / 'images' / split).mkdir(parents=True, exist_ok=True)
        (out / 'annotations' / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(out / 'images' / split / f'{stem}.jpg'), image,
            [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(
            str(out / 'annotations' / split / f'{stem}.png'),
            raster['label_map'])
    return dict(
        data_root=str(out),
        classes=CLASSES,
        shape=raster['label_map'].shape,
        pixels={
            name: int((raster['label_map'] == values[name]).sum())
            for name in CLASSES
        })
