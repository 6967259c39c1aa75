import json
from pathlib import Path

import mmdet  # noqa: F401
import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS as DET_DATASETS  # noqa: E402
from mmengine.evaluator import Evaluator  # noqa: E402
from mmengine.registry import DATASETS, init_default_scope  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from svd_mm.datasets import DeepLesionDataset  # noqa: E402
from svd_mm.evaluation.metrics import FROCMetric  # noqa: E402
from tests.helpers.deeplesion_layout import \
    build_deeplesion_layout_from_ct  # noqa: E402
from tests.helpers.tools import load_script

SCRIPT = (Path(__file__).resolve().parents[2] / 'tools' /
          'dataset_converters' / 'prepare_deeplesion.py')

META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'slice_positions')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """The real CT mini set in DeepLesion's layout, converted to jsons."""
    root = tmp_path_factory.mktemp('deeplesion')
    info = build_deeplesion_layout_from_ct(str(root), context_mm=15.)
    prepare = load_script(SCRIPT)
    cocos = prepare.build_coco(prepare.read_dl_info(info['dl_info']))
    (root / 'annotations').mkdir()
    for split, coco in cocos.items():
        (root / 'annotations' / f'deeplesion_{split}.json').write_text(
            json.dumps(coco))
    return dict(root=str(root), cases={c['split']: c for c in info['cases']})


def _dataset(root, split='train', pipeline=(), **kwargs):
    init_default_scope('mmdet')
    return DET_DATASETS.build(
        dict(
            type='DeepLesionDataset',
            data_root=root,
            ann_file=f'annotations/deeplesion_{split}.json',
            data_prefix=dict(img='Images_png/'),
            pipeline=list(pipeline),
            **kwargs))


def test_deeplesion_dataset_registry():
    assert DET_DATASETS.get('DeepLesionDataset') is DeepLesionDataset
    # mmdet-only (a CocoDataset)
    assert 'DeepLesionDataset' not in DATASETS.module_dict
    assert DeepLesionDataset.METAINFO['classes'] == ('lesion', )


@pytest.mark.parametrize('split,train_val_test', [('train', 1), ('test', 3)])
def test_data_infos(data_root, split, train_val_test):
    dataset = _dataset(data_root['root'], split, test_mode=split == 'test')
    case = data_root['cases'][train_val_test]
    assert len(dataset) == 1
    info = dataset.get_data_info(0)
    assert info['img_path'] == str(
        Path(data_root['root']) / 'Images_png' / case['folder'] /
        f"{case['key_slice']:03d}.png")
    assert info['slice_intv'] == 5.
    assert info['slice_range'] == list(case['slice_range'])
    assert info['key_slice'] == case['key_slice']
    assert info['spacing'] == pytest.approx(list(case['spacing']))
    assert (info['height'], info['width']) == (512, 512)
    assert [i['bbox'] for i in info['instances']] == [list(case['bbox'])]
    assert info['instances'][0]['bbox_label'] == 0
    assert dataset.metainfo['classes'] == ('lesion', )


def test_empty_split(data_root):
    # the mini set has no validation case
    with pytest.raises(ValueError, match='deeplesion_val.json holds no image'):
        _dataset(data_root['root'], 'val', test_mode=True)


def test_train_pipeline(data_root):
    pipeline = [
        dict(type='LoadDeepLesionSlices'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(256, 160), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandomFlip', prob=0.5, direction='vertical'),
        dict(type='SlicesToVolume', flip_prob=0.5),
        dict(type='PackDetVolumeInputs'),
    ]
    out = _dataset(data_root['root'], 'train', pipeline)[0]
    assert out['inputs'].shape == torch.Size([1, 9, 160, 160])
    assert out['inputs'].dtype == torch.float32
    boxes = out['data_samples'].gt_instances.bboxes.tensor
    assert boxes.shape == torch.Size([1, 4])
    box = np.array(data_root['cases'][1]['bbox'])
    # flips keep the box size; the resize scales it by 160 / 512
    np.testing.assert_allclose((boxes[0, 2:] - boxes[0, :2]).numpy(),
                               (box[2:] - box[:2]) * 160 / 512, atol=1e-4)


def test_test_pipeline_with_froc(data_root):
    """Annotations loaded after Resize stay in original coordinates, the
    frame of mmdet's rescaled predictions: a detector that outputs the
    lesion box scores 1 and a shifted box scores 0."""
    pipeline = [
        dict(type='LoadDeepLesionSlices'),
        dict(type='Resize', scale=(256, 256), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='SlicesToVolume'),
        dict(type='PackDetVolumeInputs', meta_keys=META_KEYS),
    ]
    dataset = _dataset(data_root['root'], 'test', pipeline, test_mode=True)
    sample = dataset[0]['data_samples']
    assert sample.img_shape == (256, 256)
    assert sample.slice_positions.tolist() == [
        k / 2 + data_root['cases'][3]['key_slice'] - 2 for k in range(9)
    ]
    results = {}
    for name, shift in [('hit', 0.), ('miss', 100.)]:
        pred = sample.clone()
        pred.pred_instances = InstanceData(
            bboxes=sample.gt_instances.bboxes.tensor + shift,
            scores=torch.tensor([0.9]),
            labels=torch.tensor([0]))
        evaluator = Evaluator(FROCMetric())
        evaluator.dataset_meta = dataset.metainfo
        evaluator.process([pred])
        results[name] = evaluator.evaluate(1)
    assert results['hit']['froc/mFROC'] == 1.
    assert results['miss']['froc/mFROC'] == 0.


def _user_json(path, images, annotations):
    path.write_text(
        json.dumps(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='lesion')])))
    return str(path)


def _image(**kwargs):
    image = dict(
        id=1,
        file_name='000001_01_01/034.png',
        width=512,
        height=512,
        slice_intv=5.,
        slice_range=[28, 40])
    image.update(kwargs)
    return image


def _ann(bbox, image_id=1, ann_id=1, iscrowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=1, bbox=bbox,
                area=bbox[2] * bbox[3], iscrowd=iscrowd)


def test_users_own_json(data_root, tmp_path):
    # own names, an explicit key slice, no spacing, an image without
    # lesions and an ignored (iscrowd) lesion
    images = [
        _image(id=7, file_name='000001_01_01/034.png', key_slice=34),
        _image(id=8, file_name='000001_01_01/033.png'),
    ]
    anns = [
        _ann([206., 347., 24., 22.], image_id=7, ann_id=3),
        _ann([10., 10., 20., 20.], image_id=7, ann_id=4, iscrowd=1),
    ]
    ann_file = _user_json(tmp_path / 'mine.json', images, anns)
    init_default_scope('mmdet')
    dataset = DET_DATASETS.build(
        dict(
            type='DeepLesionDataset',
            ann_file=ann_file,
            data_prefix=dict(img=str(Path(data_root['root']) /
                                     'Images_png')),
            test_mode=True,
            pipeline=[
                dict(type='LoadDeepLesionSlices', num_slices=3),
                dict(type='LoadAnnotations', with_bbox=True),
                dict(type='SlicesToVolume'),
                dict(type='PackDetVolumeInputs'),
            ]))
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert info['key_slice'] == 34 and info['spacing'] is None
    assert [i['ignore_flag'] for i in info['instances']] == [0, 1]
    assert dataset.get_data_info(1)['instances'] == []
    assert dataset.get_data_info(1)['key_slice'] == 33
    out = dataset[0]
    assert out['inputs'].shape == torch.Size([1, 3, 512, 512])
    assert out['data_samples'].gt_instances.bboxes.tensor.tolist() == [[
        206., 347., 230., 369.
    ]]
    assert len(out['data_samples'].ignored_instances) == 1


# [image fields, annotation box, error, message]
BAD_JSON_CASES = [
    # the slice interval is missing
    [dict(slice_intv=None), [10., 10., 5., 5.], KeyError, 'slice_intv'],
    # the slice range is missing
    [dict(slice_range=None), [10., 10., 5., 5.], KeyError, 'slice_range'],
    # a negative slice interval
    [dict(slice_intv=-1.), [10., 10., 5., 5.], ValueError, 'positive'],
    # the key slice lies outside the slice range
    [dict(slice_range=[1, 20]), [10., 10., 5., 5.], ValueError,
     'outside its slice_range'],
    # no index in the file name and no key_slice field
    [dict(file_name='000001_01_01/key.png'), [10., 10., 5., 5.], ValueError,
     'key_slice'],
    # a box beyond the right border
    [dict(), [500., 10., 20., 5.], ValueError,
     r'not inside the 512x512 \(width x height\) image'],
    # a box above the image
    [dict(), [10., -3., 20., 5.], ValueError, 'not inside'],
]


@pytest.mark.parametrize('fields,bbox,error,message', BAD_JSON_CASES)
def test_bad_json(tmp_path, fields, bbox, error, message):
    image = _image(**fields)
    image = {k: v for k, v in image.items() if v is not None}
    ann_file = _user_json(tmp_path / 'bad.json', [image], [_ann(bbox)])
    with pytest.raises(error, match=message) as info:
        DeepLesionDataset(ann_file=ann_file, data_prefix=dict(img=''))
    assert image['file_name'] in str(info.value)
