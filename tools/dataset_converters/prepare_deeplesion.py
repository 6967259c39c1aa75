"""Convert NIH DeepLesion's ``DL_info.csv`` to COCO-style jsons per split.

DeepLesion ships its lesions as one csv row each (``DL_info.csv``) and its
CT slices as ``Images_png/<patient>_<study>_<series>/<slice:03d>.png``. This
script writes one json per official split (``Train_Val_Test`` 1/2/3) for
:class:`svd_mm.datasets.DeepLesionDataset`::

    python tools/dataset_converters/prepare_deeplesion.py \\
        data/deeplesion/DL_info.csv data/deeplesion/annotations \\
        --images-root data/deeplesion/Images_png [--noisy drop]

    -> annotations/deeplesion_train.json, deeplesion_val.json,
       deeplesion_test.json (a split without images is not written)

Each key slice is one image (lesions of the same key slice share it):
``file_name`` is ``<patient>_<study>_<series>/<slice>.png`` under
``Images_png``, plus ``slice_intv`` (the z spacing, mm), ``spacing``
(``[sx, sy, sz]``), ``slice_range``, ``key_slice``, ``width`` and
``height``. ``Image_size`` is read as ``rows, columns`` (height, width);
with ``--images-root`` the size is read from each key slice PNG instead and
missing key slices are reported. Each lesion is an annotation with its
``Bounding_boxes`` as COCO ``bbox`` ``[x, y, w, h]`` and ``category_id`` 1
(``lesion``), plus ``lesion_type``, ``possibly_noisy``, ``diameters`` and
``recist`` (the measurement end points).

Lesions marked ``Possibly_noisy`` (only in the val/test splits of
DeepLesion) are, with ``--noisy``: ``drop`` (default) removed, and an image
left without lesions removed too; ``ignore`` kept with ``iscrowd: 1``
(mmdet then puts them in ``ignored_instances``, and
:class:`svd_mm.evaluation.metrics.FROCMetric` counts their hits as neither
true nor false positives); ``keep`` kept as ordinary lesions.
"""
import argparse
import csv
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

SPLITS = {1: 'train', 2: 'val', 3: 'test'}
REQUIRED_COLUMNS = ('File_name', 'Key_slice_index', 'Bounding_boxes',
                    'Slice_range', 'Spacing_mm_px_', 'Image_size',
                    'Possibly_noisy', 'Train_Val_Test')
NOISY_MODES = ('drop', 'ignore', 'keep')


def _numbers(text: str, count: int, cast, where: str, column: str) -> list:
    try:
        values = [cast(float(v)) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) != count:
        raise ValueError(f'{where}: {column} must hold {count} numbers '
                         f'separated by commas, but is {text!r}')
    return values


def _optional_numbers(row: dict, column: str) -> Optional[List[float]]:
    text = (row.get(column) or '').strip()
    if not text:
        return None
    try:
        return [float(v) for v in text.split(',')]
    except ValueError:
        return None


def read_dl_info(csv_path: str) -> List[dict]:
    """Read and check ``DL_info.csv``.

    Args:
        csv_path (str): Path of ``DL_info.csv``.

    Returns:
        list[dict]: One dict per lesion: ``file_name`` (``folder/slice.png``),
        ``key_slice``, ``bbox`` (x1, y1, x2, y2), ``slice_range``,
        ``spacing``, ``image_size`` (height, width), ``noisy``, ``split``
        (1/2/3), ``lesion_type``, ``diameters``, ``recist``, ``patient``,
        ``study``, ``series`` and ``line`` (csv line number).
    """
    with open(csv_path, newline='') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise KeyError(f'{csv_path} lacks the column(s) {missing}; its '
                           f'header is {header}')
        lesions = []
        for line, row in enumerate(reader, start=2):
            where = f'{csv_path} line {line}'
            name = row['File_name'].strip()
            folder, sep, slice_file = name.rpartition('_')
            if not sep or not slice_file.endswith('.png'):
                raise ValueError(
                    f"{where}: File_name {name!r} is not "
                    "'<patient>_<study>_<series>_<slice>.png'")
            key_slice = int(float(row['Key_slice_index']))
            stem = osp.splitext(slice_file)[0]
            if not stem.isdigit() or int(stem) != key_slice:
                raise ValueError(
                    f'{where}: File_name {name!r} does not end with the '
                    f'Key_slice_index {key_slice}')
            x1, y1, x2, y2 = _numbers(row['Bounding_boxes'], 4, float, where,
                                      'Bounding_boxes')
            if not (x2 > x1 and y2 > y1):
                raise ValueError(f'{where}: Bounding_boxes '
                                 f"{row['Bounding_boxes']!r} is empty "
                                 '(x2 <= x1 or y2 <= y1)')
            height, width = _numbers(row['Image_size'], 2, int, where,
                                     'Image_size')
            slice_range = _numbers(row['Slice_range'], 2, int, where,
                                   'Slice_range')
            if not slice_range[0] <= key_slice <= slice_range[1]:
                raise ValueError(f'{where}: Key_slice_index {key_slice} is '
                                 f'outside Slice_range {slice_range}')
            spacing = _numbers(row['Spacing_mm_px_'], 3, float, where,
                               'Spacing_mm_px_')
            if not spacing[2] > 0:
                raise ValueError(f'{where}: the slice interval (third value '
                                 f"of Spacing_mm_px_ {row['Spacing_mm_px_']!r}"
                                 ') must be positive')
            split = int(float(row['Train_Val_Test']))
            if split not in SPLITS:
                raise ValueError(f'{where}: Train_Val_Test must be 1, 2 or '
                                 f"3, but is {row['Train_Val_Test']!r}")
            lesion_type = (row.get('Coarse_lesion_type') or '').strip()
            lesions.append(
                dict(
                    file_name=f'{folder}/{slice_file}',
                    key_slice=key_slice,
                    bbox=[x1, y1, x2, y2],
                    slice_range=slice_range,
                    spacing=spacing,
                    image_size=[height, width],
                    noisy=bool(int(float(row['Possibly_noisy'] or 0))),
                    split=split,
                    lesion_type=int(float(lesion_type))
                    if lesion_type else -1,
                    diameters=_optional_numbers(row,
                                                'Lesion_diameters_Pixel_'),
                    recist=_optional_numbers(row, 'Measurement_coordinates'),
                    patient=row.get('Patient_index'),
                    study=row.get('Study_index'),
                    series=row.get('Series_ID'),
                    line=line))
    if not lesions:
        raise ValueError(f'{csv_path} holds no lesion row')
    return lesions


def read_png_sizes(lesions: List[dict],
                   images_root: str) -> Dict[str, Tuple[int, int]]:
    """Read (height, width) of every key slice from its PNG header.

    Raises:
        FileNotFoundError: Listing the number of missing key slices and the
            first few of them.
    """
    from PIL import Image

    sizes, missing = {}, []
    for name in sorted({lesion['file_name'] for lesion in lesions}):
        path = osp.join(images_root, name)
        if not osp.isfile(path):
            missing.append(path)
            continue
        with Image.open(path) as img:
            width, height = img.size
        sizes[name] = (height, width)
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(sizes) + len(missing)} key slices are '
            f'missing under {images_root}, e.g. {missing[:5]}')
    return sizes


def build_coco(lesions: List[dict],
               noisy: str = 'drop',
               sizes: Optional[Dict[str, Tuple[int, int]]] = None
               ) -> Dict[str, dict]:
    """Group lesions by key slice into one COCO dict per split.

    Args:
        lesions (list[dict]): Output of :func:`read_dl_info`.
        noisy (str): ``'drop'``, ``'ignore'`` or ``'keep'`` the possibly
            noisy lesions. Defaults to ``'drop'``.
        sizes (dict, optional): (height, width) per ``file_name``
            (:func:`read_png_sizes`), overriding ``Image_size``.

    Returns:
        dict[str, dict]: ``{'train': coco, 'val': coco, 'test': coco}``;
        image and annotation ids are unique across the splits.
    """
    if noisy not in NOISY_MODES:
        raise ValueError(f'noisy must be one of {NOISY_MODES}, but got '
                         f'{noisy!r}')
    images: 'OrderedDict[str, dict]' = OrderedDict()
    for lesion in lesions:
        image = images.get(lesion['file_name'])
        if image is None:
            height, width = (sizes or {}).get(lesion['file_name'],
                                              lesion['image_size'])
            image = images[lesion['file_name']] = dict(
                id=len(images) + 1,
                file_name=lesion['file_name'],
                width=width,
                height=height,
                key_slice=lesion['key_slice'],
                slice_intv=lesion['spacing'][2],
                spacing=lesion['spacing'],
                slice_range=lesion['slice_range'],
                patient_index=lesion['patient'],
                study_index=lesion['study'],
                series_id=lesion['series'],
                split=lesion['split'],
                lesions=[])
        elif image['split'] != lesion['split']:
            raise ValueError(
                f"Lesions of {lesion['file_name']} (csv line "
                f"{lesion['line']}) are in different splits")
        image['lesions'].append(lesion)

    cocos = {
        name: dict(
            images=[],
            annotations=[],
            categories=[dict(id=1, name='lesion')])
        for name in SPLITS.values()
    }
    ann_id = 0
    for image in images.values():
        kept = [
            lesion for lesion in image['lesions']
            if not (lesion['noisy'] and noisy == 'drop')
        ]
        if not kept:
            continue
        for lesion in kept:
            x1, y1, x2, y2 = lesion['bbox']
            if x1 < 0 or y1 < 0 or x2 > image['width'] or \
                    y2 > image['height']:
                raise ValueError(
                    f"csv line {lesion['line']}: box {lesion['bbox']} is not "
                    f"inside the {image['width']}x{image['height']} "
                    f"(width x height) image {image['file_name']}")
            ann_id += 1
            cocos[SPLITS[image['split']]]['annotations'].append(
                dict(
                    id=ann_id,
                    image_id=image['id'],
                    category_id=1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    iscrowd=int(lesion['noisy'] and noisy == 'ignore'),
                    lesion_type=lesion['lesion_type'],
                    possibly_noisy=int(lesion['noisy']),
                    diameters=lesion['diameters'],
                    recist=lesion['recist']))
        info = {k: v for k, v in image.items() if k not in ('lesions', )}
        cocos[SPLITS[image['split']]]['images'].append(info)
    return cocos


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert DeepLesion DL_info.csv to COCO-style jsons '
        '(one per split) for svd_mm.datasets.DeepLesionDataset')
    parser.add_argument('dl_info', help='path of DL_info.csv')
    parser.add_argument('out_dir', help='folder for the json files')
    parser.add_argument(
        '--images-root',
        help='the Images_png folder: check that every key slice exists and '
        'read the image sizes from the PNGs')
    parser.add_argument(
        '--noisy',
        choices=NOISY_MODES,
        default='drop',
        help='what to do with Possibly_noisy lesions (default: drop)')
    parser.add_argument(
        '--prefix', default='deeplesion', help='json name prefix')
    return parser.parse_args()


def main():
    args = parse_args()
    lesions = read_dl_info(args.dl_info)
    sizes = None
    if args.images_root is not None:
        sizes = read_png_sizes(lesions, args.images_root)
    cocos = build_coco(lesions, noisy=args.noisy, sizes=sizes)
    os.makedirs(args.out_dir, exist_ok=True)
    for split, coco in cocos.items():
        path = osp.join(args.out_dir, f'{args.prefix}_{split}.json')
        if not coco['images']:
            print(f'{split:5s}: no image, {path} not written')
            continue
        with open(path, 'w') as f:
            json.dump(coco, f)
        print(f"{split:5s}: {len(coco['images'])} images, "
              f"{len(coco['annotations'])} lesions "
              f"({sum(a['iscrowd'] for a in coco['annotations'])} ignored) "
              f'-> {path}')
    num_noisy = sum(lesion['noisy'] for lesion in lesions)
    print(f'{len(lesions)} lesions read from {args.dl_info}, {num_noisy} '
          f'possibly noisy ({args.noisy})')


if __name__ == '__main__':
    main()
