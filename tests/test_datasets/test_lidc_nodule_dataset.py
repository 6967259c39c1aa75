"""LIDCNoduleDataset on a LIDC-IDRI-layout set cut from real chest CT."""
import copy
import csv
import shutil

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, DefaultScope

from svd_mm.datasets import LIDCNoduleDataset
from svd_mm.datasets import lidc_nodule_dataset as dataset_module
from svd_mm.models.data_preprocessors import VolumeDataPreprocessor
from tests.helpers.lidc_layout import build_lidc_layout_from_ct

CROP = 32


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    """48^3 crops at 1 mm: 8 nodule and 8 background crops, 12 train and 4
    test."""
    return build_lidc_layout_from_ct(
        str(tmp_path_factory.mktemp('lidc') / 'lidc'))


@pytest.fixture
def layout_copy(layout, tmp_path):
    """A private copy to break."""
    root = tmp_path / 'lidc'
    shutil.copytree(layout['data_root'], root)
    return root


def _read(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def _write(path, rows):
    with open(path, 'w', newline='') as f:
        csv.writer(f).writerows(rows)


def _set_malignancy(root, values):
    """Rewrite malignancy_mode of the info CSV: {name: value}."""
    path = root / 'info' / 'lidc_nodule_info_new_with_subset.csv'
    rows = _read(path)
    col = rows[0].index('malignancy_mode')
    for row in rows[1:]:
        if row[0] in values:
            row[col] = values[row[0]]
    _write(path, rows)


def _pipeline(seg=False, jitter=2):
    """The training pipeline of the cls (mmpretrain) or seg (mmseg) task."""
    return [
        dict(type='LoadNoduleNpz', with_seg=seg),
        dict(type='CenterCrop3D', crop_size=CROP, jitter=jitter),
        dict(type='RandomFlip3D'),
        dict(type='RandomRot90_3D', axes=((0, 1), (0, 2), (1, 2))),
        dict(type='ScaleIntensity'),
        dict(type='PackSegVolumeInputs' if seg else 'PackInputs'),
    ]


# [split, task, expected length, expected (benign, malignant) or None]
LENGTH_CASES = [
    ['train', 'cls', 12, (6, 6)],
    ['test', 'cls', 4, (2, 2)],
    ['train', 'seg', 12, None],
    ['test', 'seg', 4, None],
]


@pytest.mark.parametrize('split,task,length,counts', LENGTH_CASES)
def test_data_list(layout, split, task, length, counts):
    dataset = LIDCNoduleDataset(
        data_root=layout['data_root'], split=split, task=task)
    assert len(dataset) == length
    names = [f'{dataset[i]["case_id"]}.npz' for i in range(len(dataset))]
    assert names == layout[split]  # split order, NaN padding dropped
    info = dataset.get_data_info(0)
    assert info['img_path'].endswith(f'nodule/{names[0]}')
    if task == 'cls':
        assert dataset.metainfo['classes'] == ('benign', 'malignant')
        labels = dataset.get_gt_labels()
        assert tuple(np.bincount(labels)) == counts
        assert labels.tolist() == [layout['labels'][n] for n in names]
        assert all(isinstance(dataset[i]['gt_label'], int)
                   for i in range(len(dataset)))
        assert dataset.get_cat_ids(0) == [int(labels[0])]
        assert 'seg_map_path' not in info
    else:
        assert dataset.metainfo['classes'] == ('background', 'nodule')
        assert info['seg_map_path'] == info['img_path']
        assert info['mask_key'] == 'answer1'
        assert info['seg_fields'] == [] and 'gt_label' not in info


def test_cls_drops_indeterminate_and_rounds_means(layout_copy, monkeypatch):
    logs = []
    monkeypatch.setattr(dataset_module, 'print_log',
                        lambda msg, **kwargs: logs.append(msg))
    _set_malignancy(layout_copy, {
        'lung1_nodule1': '3',      # indeterminate: dropped
        'lung1_nodule2': '3.5',    # mean of raters, rounds to 3: dropped
        'lung2_nodule1': '3.75',   # rounds to 4: malignant
        'lung1_background1': '2.5',  # a tie goes to 3: dropped
        'lung1_background2': '2.25',  # rounds to 2: benign
    })
    dataset = LIDCNoduleDataset(data_root=str(layout_copy), split='train')
    kept = {dataset[i]['case_id']: dataset[i]['gt_label']
            for i in range(len(dataset))}
    assert len(dataset) == 9
    assert not {'lung1_nodule1', 'lung1_nodule2', 'lung1_background1'} & \
        set(kept)
    assert kept['lung2_nodule1'] == 1 and kept['lung1_background2'] == 0
    assert logs == [
        'LIDCNoduleDataset (train, cls): kept 9 nodules (5 benign, '
        '4 malignant), dropped 3 with malignancy 3 (indeterminate)'
    ]
    # segmentation keeps every nodule, whatever its malignancy
    seg = LIDCNoduleDataset(
        data_root=str(layout_copy), split='train', task='seg')
    assert len(seg) == 12


def test_info_columns_of_other_releases(layout_copy):
    """A 'name' + 'malignancy' info CSV (no .npz suffix in the split)."""
    info = layout_copy / 'info' / 'lidc_nodule_info_new_with_subset.csv'
    rows = _read(info)
    header = rows[0]
    keep = [header.index('index'), header.index('malignancy')]
    _write(layout_copy / 'info.csv',
           [['name', 'malignancy']] + [[r[i] for i in keep]
                                       for r in rows[1:]])
    split = _read(layout_copy / 'train_test_split.csv')
    _write(layout_copy / 'split.csv',
           [split[0]] + [[c[:-4] if c else c for c in r] for r in split[1:]])
    dataset = LIDCNoduleDataset(
        data_root=str(layout_copy), ann_file='split.csv',
        info_file='info.csv', split='test')
    assert len(dataset) == 4
    assert dataset.get_gt_labels().tolist() == [1, 0, 1, 0]


def test_cls_pipeline_mmpretrain(layout):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS
        dataset = PRETRAIN_DATASETS.build(
            dict(
                type='LIDCNoduleDataset',
                data_root=layout['data_root'],
                split='train',
                pipeline=_pipeline()))
    assert isinstance(dataset, LIDCNoduleDataset)
    np.random.seed(0)
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    for inputs, sample in zip(batch['inputs'], batch['data_samples']):
        assert inputs.shape == torch.Size([1, CROP, CROP, CROP])
        assert inputs.dtype == torch.float32
        assert -1. <= inputs.min() and inputs.max() <= 0.
        assert sample.gt_label.tolist() in ([0], [1])
        assert sample.img_shape == (CROP, ) * 3
    labels = torch.cat([s.gt_label for s in batch['data_samples']])
    assert labels.tolist() == dataset.get_gt_labels().tolist()
    # the nodules are brighter (soft tissue) than the lung crops
    means = torch.stack([x.mean() for x in batch['inputs']])
    assert means[labels == 1].mean() > means[labels == 0].mean() + 0.1
    # the batch reaches a 3D model as (N, C, D, H, W)
    data = VolumeDataPreprocessor()(batch)
    assert data['inputs'].shape == torch.Size([12, 1, CROP, CROP, CROP])


def test_seg_pipeline_mmseg(layout):
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import DATASETS as SEG_DATASETS
        dataset = SEG_DATASETS.build(
            dict(
                type='LIDCNoduleDataset',
                data_root=layout['data_root'],
                split='test',
                task='seg',
                pipeline=_pipeline(seg=True, jitter=0)))
    names = [dataset.get_data_info(i)['case_id'] for i in range(4)]
    np.random.seed(1)
    for name, item in zip(names, (dataset[i] for i in range(4))):
        img = item['inputs'][0]
        mask = item['data_samples'].gt_sem_seg.data[0]
        assert img.shape == mask.shape == torch.Size([CROP, CROP, CROP])
        assert item['data_samples'].case_id == name
        if 'background' in name:
            assert mask.sum() == 0
            continue
        # a nodule sample: the real mask is there, centred, and the image
        # is brighter inside it (flips / rotations moved both together)
        assert mask.sum() > 500
        centroid = torch.nonzero(mask).float().mean(0)
        if name == 'lung1_nodule0':  # small nodule, wholly inside
            assert (centroid - (CROP - 1) / 2).abs().max() < 1.5
        assert img[mask == 1].mean() > img[mask == 0].mean() + 0.15


def test_dataset_in_mmseg_dataloader(layout):
    """Through mmengine's dataloader builder, as a config would."""
    from mmengine.runner import Runner
    with DefaultScope.overwrite_default_scope('mmseg'):
        loader = Runner.build_dataloader(
            dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate'),
                dataset=dict(
                    type='LIDCNoduleDataset',
                    data_root=layout['data_root'],
                    split='test',
                    task='seg',
                    pipeline=_pipeline(seg=True))),
            seed=0)
    batch = next(iter(loader))
    assert len(batch['inputs']) == 4
    masks = [s.gt_sem_seg.data for s in batch['data_samples']]
    assert [int(m.sum() > 0) for m in masks] == [1, 0, 1, 0]


def test_mask_key_and_missing_key(layout):
    dataset = LIDCNoduleDataset(
        data_root=layout['data_root'], split='test', task='seg',
        mask_key='answer2',
        pipeline=[dict(type='LoadNoduleNpz', with_seg=True)])
    assert dataset.get_data_info(0)['mask_key'] == 'answer2'
    # the mini release has one rater: the error names file, key and keys
    with pytest.raises(KeyError, match=r"lung1_nodule0.npz has no key "
                       r"'answer2'; its keys are \['answer1', 'voxel'\]"):
        dataset[0]


def test_missing_npz(layout_copy):
    (layout_copy / 'nodule' / 'lung2_nodule0.npz').unlink()
    (layout_copy / 'nodule' / 'lung1_background0.npz').unlink()
    # both missing files of the split are counted, the path is named
    with pytest.raises(FileNotFoundError,
                       match=r"2 of the 4 nodules of split 'test'.*"
                       r'lung1_background0.npz'):
        LIDCNoduleDataset(data_root=str(layout_copy), split='test')
    # the train split does not use them
    assert len(LIDCNoduleDataset(data_root=str(layout_copy))) == 12


def test_split_name_absent_from_info(layout_copy):
    info = layout_copy / 'info' / 'lidc_nodule_info_new_with_subset.csv'
    rows = _read(info)
    _write(info, [r for r in rows if r[0] != 'lung2_nodule0'])
    with pytest.raises(KeyError, match=r"1 of the 4 nodules of split "
                       r"'test' have no row.*lung2_nodule0"):
        LIDCNoduleDataset(data_root=str(layout_copy), split='test')


@pytest.mark.parametrize('value', ['0', '6', '', 'high'])
def test_malignancy_out_of_range(layout_copy, value):
    _set_malignancy(layout_copy, {'lung1_nodule0': value})
    with pytest.raises(ValueError, match=r"'lung1_nodule0'.*malignancy must "
                       r'be in \[1, 5\]'):
        LIDCNoduleDataset(data_root=str(layout_copy), split='test')


def test_bad_arguments(layout, layout_copy):
    root = layout['data_root']
    # a split that is not a column of the split CSV
    with pytest.raises(ValueError, match=r"split 'val' is not a column.*"
                       r"\['train', 'test'\]"):
        LIDCNoduleDataset(data_root=root, split='val')
    # an unknown task
    with pytest.raises(ValueError, match='task must be one of'):
        LIDCNoduleDataset(data_root=root, task='det')
    # a missing split CSV
    with pytest.raises(FileNotFoundError, match='split CSV.*nosplit.csv'):
        LIDCNoduleDataset(data_root=root, ann_file='nosplit.csv')
    # a missing info CSV (cls only)
    with pytest.raises(FileNotFoundError, match='info CSV.*noinfo.csv'):
        LIDCNoduleDataset(data_root=root, info_file='noinfo.csv')
    assert len(LIDCNoduleDataset(data_root=root, info_file='noinfo.csv',
                                 task='seg')) == 12
    # an info CSV without the requested malignancy column
    with pytest.raises(KeyError, match=r"no malignancy column 'score'.*"
                       r"'malignancy_mode'"):
        LIDCNoduleDataset(data_root=root, malignancy_key='score')
    # data_prefix must say where the npz files are
    with pytest.raises(KeyError, match='img_path'):
        LIDCNoduleDataset(data_root=root, data_prefix=dict(seg='nodule'))
    # a split column without names
    _write(layout_copy / 'empty.csv', [['train', 'test'], ['', '']])
    with pytest.raises(ValueError, match='lists no nodule'):
        LIDCNoduleDataset(data_root=str(layout_copy), ann_file='empty.csv')


def test_builds_from_root_registry(layout):
    cfg = dict(type='LIDCNoduleDataset', data_root=layout['data_root'],
               split='test', task='seg', lazy_init=True)
    dataset = DATASETS.build(copy.deepcopy(cfg))
    assert isinstance(dataset, LIDCNoduleDataset)
    assert 'not yet loaded' in repr(dataset)
    dataset.full_init()
    assert 'Number of samples: \t4' in repr(dataset)
