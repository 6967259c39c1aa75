"""Issue: LIDC-IDRI nodule classification and segmentation (Tables III, IV).

The row configs of ``configs/lidc`` (classification: ResNet3D-18 + 3D GAP +
linear head in mmpretrain; segmentation: EncoderDecoder3D with a ResNet3D-18
encoder and FCNHead3D in mmseg; each from scratch and from the SVD-Net
ImageNet weights) are checked as configs and as built models. Then, on a
LIDC-layout mini dataset cut from the real pyradiomics chest CTs (lesion
crops with their real masks are malignant, lung background crops benign):

- the real classification config (scratch) trains with ``tools/train.py``
  at width 8 and ``tools/test.py`` reports a finite AUC and the other
  binary metrics on the test split;
- the demo pre-training config is trained for one epoch at width 4 with
  ``tools/train.py`` and cut to its backbone with
  ``tools/model_converters/extract_backbone.py``; the real segmentation
  config of the "Ours" row loads it (its init switch) and, with a 24^3 crop,
  no augmentation and a higher learning rate, overfits the two real lesions
  in 24 iterations: ``tools/test.py`` measures Dice > 0.5 on the training
  nodules.
"""
import copy
import json
import logging
import math
import os
import os.path as osp
import runpy

import mmseg  # noqa: F401
import nrrd  # noqa: F401; reads the pyradiomics CTs
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DATASETS, DefaultScope

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers import tools
from tests.helpers.data_cache import layout_classification_set
from tests.helpers.lidc_layout import build_lidc_layout_from_ct

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'lidc')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
EXTRACT = osp.join(REPO, 'tools', 'model_converters', 'extract_backbone.py')
PRETRAIN_DEMO = osp.join(REPO, 'configs', 'demo',
                         'vdt_r3d18-w8_1xb4-8e_foolbox.py')
SVD_CKPT = 'checkpoints/r3d18-svd-in1k_backbone.pth'

CLS_SCRATCH = 'cls/cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48.py'
CLS_SVD = 'cls/cls3d_r3d18-svd-in1k_gap-linear_4xb32-100e_lidc-cls-48.py'
SEG_SCRATCH = 'seg/fcn3d_r3d18-scratch_4xb4-100e_lidc-seg-48.py'
SEG_SVD = 'seg/fcn3d_r3d18-svd-in1k_4xb4-100e_lidc-seg-48.py'
# [config, paper table, default scope, backbone init_cfg]
ROW_TABLE = [
    (CLS_SCRATCH, 'Table IV', 'mmpretrain', None),
    (CLS_SVD, 'Table IV', 'mmpretrain',
     dict(type='Pretrained', checkpoint=SVD_CKPT)),
    (SEG_SCRATCH, 'Table III', 'mmseg', None),
    (SEG_SVD, 'Table III', 'mmseg',
     dict(type='Pretrained', checkpoint=SVD_CKPT)),
]
# width of the tiny models built in these tests
WIDTH = 8
# [task, input (D, H, W), backbone output (C, D', H', W')] at width 8.
# cls: stem and max-pool stride 2 and stages (1, 2, 2, 2) on every axis;
# seg: stem stride 1, no max-pool, stages (1, 2, 1, 2): D/4, H/4, W/4.
SHAPE_TABLE = [
    ('cls', (48, 48, 48), (64, 2, 2, 2)),
    ('cls', (40, 48, 56), (64, 2, 2, 2)),
    ('cls', (24, 32, 40), (64, 1, 1, 2)),
    ('seg', (48, 48, 48), (64, 12, 12, 12)),
    ('seg', (24, 32, 40), (64, 6, 8, 10)),
    ('seg', (12, 20, 28), (64, 3, 5, 7)),
]


def config_path(name):
    return osp.join(CONFIG_DIR, name)


def register(scope):
    """Register the modules of a toolbox; return its model registry."""
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS


def build_model(cfg, scope):
    """Build a model config in the registry of its toolbox."""
    models = register(scope)
    with DefaultScope.overwrite_default_scope(scope):
        return models.build(cfg)


def tiny_model_cfg(name, width=WIDTH, checkpoint=None):
    """``model`` of a row config at a tiny width."""
    cfg = Config.fromfile(config_path(name))
    model = copy.deepcopy(cfg.model)
    model.backbone.base_channels = width
    if 'head' in model:
        model.head.in_channels = width * 8
    else:
        model.decode_head.in_channels = width * 8
        model.decode_head.channels = 8
    if checkpoint is not None:
        model.backbone.init_cfg.checkpoint = checkpoint
    return cfg, model


def run_tool(args):
    return tools.run_tool(args, REPO, timeout=900, threads=2)


def loader_options(data_root, batch_size):
    """--cfg-options of the three dataloaders: the mini layout, no worker
    processes, a small batch."""
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
            f'{loader}.batch_size={batch_size}'
        ]
    return options


def scalar_logs(work_dir):
    """Records of mmengine's json scalar log (training and validation)."""
    logs = sorted(
        osp.join(root, f) for root, _, files in os.walk(work_dir)
        for f in files if f.endswith('.json')
        and osp.basename(root) == 'vis_data' and not f.startswith('scalars'))
    assert logs, f'no scalar log in {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def lidc(tmp_path_factory):
    """The LIDC-IDRI-layout mini dataset from the real chest CTs: 48^3
    crops at 1 mm; per CT 3 + 3 training and 1 + 1 test crops (lesion +
    background)."""
    info = build_lidc_layout_from_ct(
        str(tmp_path_factory.mktemp('lidc')), size=48)
    assert len(info['train']) == 12 and len(info['test']) == 4
    return info


@pytest.fixture(scope='module')
def svd_backbone(tmp_path_factory):
    """SVD-Net backbone weights at width 4 made by the real tool chain:
    one epoch of the demo pre-training config on the 20 real foolbox photos
    with tools/train.py, then extract_backbone."""
    root = tmp_path_factory.mktemp('svd_pretrain')
    data = layout_classification_set(str(root / 'foolbox'))
    work_dir = root / 'work'
    options = [
        f'{loader}.dataset.data_root={data["data_root"]}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ] + [
        'model.backbone.base_channels=4', 'model.head.in_channels=32',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1', 'param_scheduler.T_max=1',
        'param_scheduler.end=1'
    ]
    run_tool([
        TRAIN, PRETRAIN_DEMO, '--work-dir', work_dir, '--cfg-options', *options
    ])
    out = root / 'r3d18-w4_svd-foolbox.pth'
    converter = runpy.run_path(EXTRACT, run_name='extract_backbone')
    report = converter['extract_backbone'](str(work_dir / 'epoch_1.pth'),
                                           str(out))
    assert report['dropped_prefixes'] == {'head': 2}
    return str(out)


@pytest.mark.parametrize('name,table,scope,init_cfg', ROW_TABLE)
def test_row_config(name, table, scope, init_cfg):
    cfg = Config.fromfile(config_path(name))
    with open(config_path(name)) as f:
        header = f.readline()
    assert header.startswith(f'# {table} ')
    assert cfg.default_scope == scope
    assert 'svd_mm' in cfg.custom_imports.imports
    # the init switch sets the backbone's init_cfg, nothing else
    assert cfg.model.backbone.init_cfg == init_cfg
    assert cfg.backbone_init == dict(init_cfg=init_cfg)
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.in_channels) == \
        ('ResNet3D', 18, 1)
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'LIDCNoduleDataset'
        assert dataset.task == name[:3]
        assert dataset.split == ('train'
                                 if loader == 'train_dataloader' else 'test')
        assert [t.type for t in dataset.pipeline][:2] == \
            ['LoadNoduleNpz', 'CenterCrop3D']
        assert dataset.pipeline[1].crop_size == 48
        assert dataset.pipeline[1].get('jitter', 0) == \
            (5 if loader == 'train_dataloader' else 0)
    if scope == 'mmpretrain':
        # official SVD-Net config: Adam 5e-4, x0.1 at 30/60/90, 4 x 32
        assert (backbone.stem_stride, backbone.stem_slice_stride,
                backbone.with_maxpool, backbone.maxpool_slice_stride) == \
            (2, 2, True, 2)
        assert backbone.strides == backbone.slice_strides == (1, 2, 2, 2)
        assert cfg.model.neck == dict(type='GlobalAveragePooling', dim=3)
        assert cfg.model.head.num_classes == 2
        assert cfg.optim_wrapper.optimizer.lr == 5e-4
        assert cfg.param_scheduler[1].milestones == [30, 60, 90]
        assert cfg.param_scheduler[1].gamma == 0.1
        assert cfg.train_dataloader.batch_size == 32
        assert cfg.auto_scale_lr.base_batch_size == 128
        assert cfg.val_evaluator.type == 'BinaryClsMetric'
        assert cfg.default_hooks.checkpoint.save_best == 'binary/auc'
    else:
        # ACS-style encoder, CE 1.0 + Dice 0.3, Adam 1e-3 poly to 1e-6
        assert (backbone.stem_stride, backbone.with_maxpool) == (1, False)
        assert backbone.strides == backbone.slice_strides == (1, 2, 1, 2)
        assert cfg.model.type == 'EncoderDecoder3D'
        assert cfg.model.decode_head.type == 'FCNHead3D'
        assert [(loss.type, loss.loss_weight)
                for loss in cfg.model.decode_head.loss_decode] == \
            [('CrossEntropyLoss', 1.0), ('DiceLoss3D', 0.3)]
        assert cfg.optim_wrapper.optimizer.lr == 1e-3
        poly = cfg.param_scheduler[0]
        assert (poly.type, poly.power, poly.eta_min) == ('PolyLR', 0.9, 1e-6)
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.auto_scale_lr.base_batch_size == 16
        assert cfg.val_evaluator.type == 'DiceMetric3D'
        assert cfg.default_hooks.checkpoint.save_best == 'dice_per_case'
        assert cfg.model.data_preprocessor.type == 'SegVolumeDataPreprocessor'


@pytest.mark.parametrize('scratch,svd', [(CLS_SCRATCH, CLS_SVD),
                                         (SEG_SCRATCH, SEG_SVD)])
def test_rows_differ_only_in_init(scratch, svd):
    dicts = []
    for name in (scratch, svd):
        cfg = Config.fromfile(config_path(name)).to_dict()
        cfg.pop('backbone_init')
        cfg['model']['backbone'].pop('init_cfg')
        dicts.append(cfg)
    assert dicts[0] == dicts[1]


@pytest.mark.parametrize('task,in_shape,feat_shape', SHAPE_TABLE)
def test_model_shapes(task, in_shape, feat_shape):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    name, scope = {
        'cls': (CLS_SCRATCH, 'mmpretrain'),
        'seg': (SEG_SCRATCH, 'mmseg')
    }[task]
    _, model_cfg = tiny_model_cfg(name)
    model = build_model(model_cfg, scope)
    model.init_weights()
    model.eval()
    inputs = torch.rand(2, 1, *in_shape)
    with torch.no_grad():
        feats = model.backbone(inputs)
        assert [f.shape for f in feats] == [torch.Size((2, ) + feat_shape)]
        if task == 'cls':
            assert model(inputs, mode='tensor').shape == torch.Size((2, 2))
        else:
            results = model.predict(inputs)
            assert results[0].pred_sem_seg.data.shape == \
                torch.Size((1, ) + in_shape)
            assert results[0].seg_logits.data.shape == \
                torch.Size((2, ) + in_shape)


@pytest.mark.parametrize('name', [CLS_SCRATCH, SEG_SCRATCH])
def test_pipelines_on_real_ct(lidc, name):
    cfg = Config.fromfile(config_path(name))
    scope = cfg.default_scope
    register(scope)
    for loader, num in (('train_dataloader', 12), ('test_dataloader', 4)):
        dataset_cfg = copy.deepcopy(cfg[loader].dataset)
        dataset_cfg.data_root = lidc['data_root']
        with DefaultScope.overwrite_default_scope(scope):
            dataset = DATASETS.build(dataset_cfg)
        assert len(dataset) == num
        for idx in range(num):
            packed = dataset[idx]
            sample = packed['data_samples']
            name_ = osp.basename(sample.img_path)
            assert packed['inputs'].shape == torch.Size((1, 48, 48, 48))
            if scope == 'mmpretrain':
                # voxel / 255 - 0.5
                assert packed['inputs'].dtype == torch.float32
                assert -0.5 <= packed['inputs'].min() <= \
                    packed['inputs'].max() <= 0.5
                assert sample.gt_label.tolist() == [lidc['labels'][name_]]
            else:
                # uint8 voxels, normalised by the data preprocessor
                assert packed['inputs'].dtype == torch.uint8
                mask = sample.gt_sem_seg.data
                assert mask.shape == torch.Size((1, 48, 48, 48))
                assert set(mask.unique().tolist()) <= {0, 1, 255}
                assert bool((mask == 1).any()) == ('nodule' in name_)
                if loader == 'test_dataloader':
                    # evaluated at the crop, not the stored volume's size
                    assert 'ori_shape' not in sample
                    assert sample.img_shape == (48, 48, 48)


def test_svd_init_switch_loads_pretrained_backbone(svd_backbone):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    state = torch.load(svd_backbone, weights_only=True)['state_dict']
    for name, scope in ((CLS_SVD, 'mmpretrain'), (SEG_SVD, 'mmseg')):
        _, model_cfg = tiny_model_cfg(name, width=4, checkpoint=svd_backbone)
        model = build_model(model_cfg, scope)
        model.init_weights()
        loaded = model.backbone.state_dict()
        assert sorted(loaded) == sorted(state)
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key


def test_svd_init_switch_bad_checkpoint(svd_backbone, tmp_path):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    # the checkpoint has not been made (extract_backbone not run)
    missing = str(tmp_path / 'r3d18-svd-in1k_backbone.pth')
    _, model_cfg = tiny_model_cfg(SEG_SVD, width=4, checkpoint=missing)
    model = build_model(model_cfg, 'mmseg')
    with pytest.raises(FileNotFoundError, match='r3d18-svd-in1k_backbone.pth'):
        model.init_weights()
    # a width-4 checkpoint for a width-8 backbone
    _, model_cfg = tiny_model_cfg(CLS_SVD, width=8, checkpoint=svd_backbone)
    model = build_model(model_cfg, 'mmpretrain')
    with pytest.raises(ValueError, match='another depth or width'):
        model.init_weights()


def test_classification_trains_and_tests_on_real_ct(lidc, tmp_path):
    """The scratch row, width 8, one epoch of 3 iterations, real
    augmentation and 48^3 crops."""
    config = config_path(CLS_SCRATCH)
    options = loader_options(lidc['data_root'], 4) + [
        f'model.backbone.base_channels={WIDTH}',
        f'model.head.in_channels={WIDTH * 8}', 'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1', 'randomness.seed=0'
    ]
    work_dir = tmp_path / 'cls'
    run_tool(
        [TRAIN, config, '--work-dir', work_dir, '--cfg-options', *options])
    losses = [r['loss'] for r in scalar_logs(work_dir) if 'loss' in r]
    assert len(losses) == 3 and np.isfinite(losses).all()
    # the best-AUC checkpoint of the schedule
    best = work_dir / 'best_binary_auc_epoch_1.pth'
    assert best.exists()

    out = tmp_path / 'metrics.json'
    proc = run_tool([
        TEST, config, best, '--work-dir', tmp_path / 'cls_test', '--out', out,
        '--cfg-options', *options
    ])
    metrics = json.loads(out.read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == metrics
    assert sorted(metrics) == [
        'binary/accuracy', 'binary/auc', 'binary/f1', 'binary/precision',
        'binary/sensitivity', 'binary/specificity'
    ]
    # 2 lesion and 2 background crops: every metric is defined
    for key, value in metrics.items():
        assert math.isfinite(value) and 0. <= value <= 1., (key, value)
    assert metrics['binary/accuracy'] in (0., .25, .5, .75, 1.)


def test_segmentation_from_svd_weights_overfits_real_lesions(
        lidc, svd_backbone, tmp_path):
    """The "Ours" row at width 4, initialised from the extracted SVD-Net
    backbone, fitted to the training lesion crops of both CTs (24^3 crops,
    no augmentation, lr 0.05, 16 epochs of 2 iterations: the Dice over seeds
    0-5 lies in 0.69-0.91 per case and 0.93-0.98 global on this machine; 12
    epochs left seed 0 at 0.46 global on some CPUs)."""
    config = config_path(SEG_SVD)
    nodules = [
        i for i, name in enumerate(lidc['train']) if lidc['labels'][name]
    ]
    assert len(nodules) == 6
    crop_options = [
        f'{loader}.dataset.pipeline.1.crop_size=24'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]
    options = loader_options(lidc['data_root'], 3) + crop_options + [
        'model.backbone.base_channels=4', 'model.decode_head.in_channels=32',
        'model.decode_head.channels=8',
        f'model.backbone.init_cfg.checkpoint={svd_backbone}',
        'train_dataloader.dataset.indices=[{}]'.format(','.join(
            map(str,
                nodules))), 'train_dataloader.dataset.pipeline.1.jitter=0',
        'train_dataloader.dataset.pipeline.2.prob=0',
        'train_dataloader.dataset.pipeline.3.prob=0',
        'optim_wrapper.optimizer.lr=0.05', 'train_cfg.max_epochs=16',
        'train_cfg.val_interval=16', 'default_hooks.logger.interval=1',
        'randomness.seed=0'
    ]
    work_dir = tmp_path / 'seg'
    proc = run_tool(
        [TRAIN, config, '--work-dir', work_dir, '--cfg-options', *options])
    # the init switch loaded every backbone tensor of the extracted weights
    assert f'ResNet3D: loaded 120/120 tensors from {svd_backbone}' in \
        proc.stdout + proc.stderr
    records = scalar_logs(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 32 and np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    # validation on the held-out test crops ran and is a Dice
    val = [r for r in records if 'dice_per_case' in r]
    assert len(val) == 1
    assert 0. <= val[0]['dice_per_case'] <= 1.
    assert 0. <= val[0]['dice_global'] <= 1.

    out = tmp_path / 'metrics.json'
    run_tool([
        TEST, config, work_dir / 'epoch_16.pth', '--work-dir',
        tmp_path / 'seg_test', '--out', out, '--cfg-options', *options,
        'test_dataloader.dataset.split=train',
        'test_dataloader.dataset.indices=[{}]'.format(','.join(
            map(str, nodules)))
    ])
    metrics = json.loads(out.read_text())
    assert sorted(metrics) == ['dice_global', 'dice_per_case']
    # the two real lesions (3 crops each) are segmented
    assert metrics['dice_per_case'] > 0.5, metrics
    assert metrics['dice_global'] > 0.5, metrics
