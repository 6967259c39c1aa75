"""Issue: pre-training pipelines, pseudo-3D ImageNet classification.

The configs of ``configs/pretrain/imagenet`` (Table II rows ResNet3D-18,
-34, -50, ResNet3DV1c-18, the slice-order shuffle and the 2D ResNet-18
baseline) are checked as configs and as built models. Then the real
ResNet3DV1c-18 config, shrunk to width 8, 48x48 crops and 6 epochs by a
``_base_`` override (as ``configs/demo`` shrinks the R3D-18 one), trains with
``tools/train.py`` on the 20 real ImageNet photos of the foolbox wheel; its
loss falls, ``tools/test.py`` reports top-1/top-5, and
``tools/model_converters/extract_backbone.py`` turns the checkpoint into the
weights of a fine-tuning ResNet3DV1c with other strides.
"""
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.structures import DataSample
from mmpretrain.utils import register_all_modules

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers.tools import config_header, run_tool, scalar_records
from tests.helpers.data_cache import layout_classification_set

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'pretrain', 'imagenet')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
EXTRACT = osp.join(REPO, 'tools', 'model_converters', 'extract_backbone.py')
register_all_modules(init_default_scope=False)


# [config, backbone type, depth, head in_channels, params in millions as
#  written in the header comment, the paper's Table II values in the header
#  (../shared/PAPER_TABLES.md)]
CONFIG_TABLE = [
    ('vdt_r3d18_8xb32-100e_in1k.py', 'ResNet3D', 18, 512, 33.67,
     'Top 1 Accuracy 73.43, Top 5 Accuracy 91.31'),
    ('vdt_r3d18_8xb32-100e_in1k-shuffle.py', 'ResNet3D', 18, 512, None,
     'Paper: not reported'),
    ('vdt_r3d34_8xb32-100e_in1k.py', 'ResNet3D', 34, 512, 63.98,
     'Top 1 Accuracy 76.11, Top 5 Accuracy 92.71'),
    ('vdt_r3d50_8xb32-100e_in1k.py', 'ResNet3D', 50, 2048, 48.20,
     'Top 1 Accuracy 77.45, Top 5 Accuracy 93.67'),
    ('vdt_r3dv1c18_8xb32-100e_in1k.py', 'ResNet3DV1c', 18, 512, 33.73,
     'Paper: not reported'),
]
CONFIG_2D = 'resnet18_8xb32-100e_in1k-2d.py'

# The tiny run: the real V1c-18 config, width 8, 48x48 crops, 6 epochs of
# 5 iterations (20 photos, batch 4). Validation at the last epoch only.
TINY_WIDTH = 8
TINY_EPOCHS = 6
TINY_OVERRIDE = """\
_base_ = [{base!r}]
data_root = {data_root!r}
width = {width}
crop = 48
max_epochs = {epochs}

model = dict(
    backbone=dict(base_channels=width), head=dict(in_channels=width * 8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop + 8, edge='short'),
    dict(type='RandomCrop', crop_size=crop),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop + 8, edge='short'),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='images',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='images',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = dict(T_max=max_epochs, end=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
"""


def config_path(name):
    return osp.join(CONFIG_DIR, name)


# --------------------------------------------------------------------------
# the configs
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', [row[0] for row in CONFIG_TABLE] +
                         [CONFIG_2D])
def test_config_runs_with_svd_mm_under_mmpretrain(name):
    cfg = Config.fromfile(config_path(name))
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports.imports == ['svd_mm']
    # the common recipe: label smoothing, SGD lr 0.1 + cosine, 8 x 32
    assert cfg.model.head.loss.type == 'LabelSmoothLoss'
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert cfg.param_scheduler.type == 'CosineAnnealingLR'
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 256
    assert 'AMP' in open(config_path(name)).read()


@pytest.mark.parametrize('name,backbone,depth,in_channels,params,target',
                         CONFIG_TABLE)
def test_pseudo3d_config_builds_its_table_row(name, backbone, depth,
                                              in_channels, params, target):
    cfg = Config.fromfile(config_path(name))
    assert target in config_header(config_path(name))
    assert cfg.model.backbone.type == backbone
    assert cfg.model.backbone.depth == depth
    assert cfg.model.head.in_channels == in_channels
    # pre-train mode: no stride along D anywhere (D=3 to the last stage)
    assert 'slice_strides' not in cfg.model.backbone
    pipeline = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert pipeline[-2:] == ['RGBToVolume', 'PackInputs']
    if params is None:
        return
    model = PRETRAIN_MODELS.build(cfg.model)
    # the head follows the backbone
    assert model.backbone.feat_dim == cfg.model.head.in_channels
    num_params = sum(p.numel() for p in model.parameters()) / 1e6
    assert f'{params:.2f} M params' in config_header(config_path(name))
    assert num_params == pytest.approx(params, abs=0.005)


def test_shuffle_row_and_cfg_option():
    shuffle = Config.fromfile(
        config_path('vdt_r3d18_8xb32-100e_in1k-shuffle.py'))
    plain = Config.fromfile(config_path('vdt_r3d18_8xb32-100e_in1k.py'))
    shuffled = shuffle.train_dataloader.dataset.pipeline
    original = plain.train_dataloader.dataset.pipeline
    assert shuffled[4] == dict(
        type='RGBToVolume', slice_order='rgb', shuffle_prob=1.0)
    assert original[4].shuffle_prob == 0.
    # everything else is the plain row
    assert shuffled[:4] == original[:4] and shuffled[5:] == original[5:]
    shuffle.train_dataloader.dataset.pipeline = original
    shuffle.train_pipeline = plain.train_pipeline
    assert shuffle.to_dict() == plain.to_dict()
    # the --cfg-options form documented in the shuffle config's header
    cfg = Config.fromfile(config_path('vdt_r3d50_8xb32-100e_in1k.py'))
    cfg.merge_from_dict(
        {'train_dataloader.dataset.pipeline.4.shuffle_prob': 1.0})
    assert cfg.train_dataloader.dataset.pipeline[4] == dict(
        type='RGBToVolume', slice_order='rgb', shuffle_prob=1.0)


def test_2d_baseline_differs_from_3d_only_by_the_vdt():
    cfg_2d = Config.fromfile(config_path(CONFIG_2D))
    cfg_3d = Config.fromfile(config_path('vdt_r3d18_8xb32-100e_in1k.py'))
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                'auto_scale_lr', 'val_evaluator'):
        assert cfg_2d[key] == cfg_3d[key], key
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipe_2d = cfg_2d[loader].dataset.pipeline
        pipe_3d = [
            t for t in cfg_3d[loader].dataset.pipeline
            if t.type != 'RGBToVolume'
        ]
        assert pipe_2d == pipe_3d, loader
        assert cfg_2d[loader].batch_size == cfg_3d[loader].batch_size
    assert cfg_2d.model.backbone.type == 'ResNet'
    assert cfg_2d.model.backbone.depth == 18
    assert cfg_2d.model.head.loss.type == 'LabelSmoothLoss'
    assert cfg_2d.model.head.loss.label_smooth_val == 0.1

    model = PRETRAIN_MODELS.build(cfg_2d.model)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == \
        pytest.approx(11.69, abs=0.005)
    assert '11.69 M params' in config_header(config_path(CONFIG_2D))
    # an (H, W, 3) image stays 2D: (N, 3, H, W) into the 2D ResNet
    data = model.data_preprocessor(
        dict(
            inputs=[torch.zeros(3, 40, 56, dtype=torch.uint8)],
            data_samples=[DataSample().set_gt_label(3)]))
    assert data['inputs'].shape == torch.Size([1, 3, 40, 56])


# --------------------------------------------------------------------------
# the tiny run of the real V1c-18 config on real photos
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('pretrain_imagenet')
    data = layout_classification_set(str(root / 'foolbox'))
    assert data['num_images'] == 20
    config = root / 'vdt_r3dv1c18-w8_1xb4-6e_foolbox.py'
    config.write_text(
        TINY_OVERRIDE.format(
            base=config_path('vdt_r3dv1c18_8xb32-100e_in1k.py'),
            data_root=data['data_root'],
            width=TINY_WIDTH,
            epochs=TINY_EPOCHS))
    work_dir = root / 'work'
    run_tool(cwd=REPO, args=[TRAIN, config, '--work-dir', work_dir])
    return dict(root=root, config=config, work_dir=work_dir)


def test_tiny_v1c18_loss_falls_on_real_photos(tiny_run):
    records = scalar_records(tiny_run['work_dir'])
    losses = [(r['epoch'], r['loss']) for r in records if 'loss' in r]
    # 20 photos, batch 4, 6 epochs
    assert len(losses) == 5 * TINY_EPOCHS
    assert np.isfinite([v for _, v in losses]).all()
    first = np.mean([v for e, v in losses if e == 1])
    last = np.mean([v for e, v in losses if e == TINY_EPOCHS])
    # label smoothing 0.1 over 1000 classes: ln(1000) = 6.9 at chance
    assert first > 6.0
    assert last < first - 1.0, (first, last)


def test_tiny_v1c18_test_tool_reports_top1_top5(tiny_run):
    ckpt = tiny_run['work_dir'] / f'epoch_{TINY_EPOCHS}.pth'
    out = tiny_run['root'] / 'metrics.json'
    proc = run_tool(cwd=REPO, args=[
        TEST, tiny_run['config'], ckpt, '--work-dir',
        tiny_run['root'] / 'test', '--out', out
    ])
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    dumped = json.loads(out.read_text())
    assert printed == dumped
    assert sorted(dumped) == ['accuracy/top1', 'accuracy/top5']
    top1, top5 = dumped['accuracy/top1'], dumped['accuracy/top5']
    # 20 images: multiples of 5 %
    assert 0 <= top1 <= top5 <= 100
    assert top1 % 5 == 0 and top5 % 5 == 0
    # the trained checkpoint was evaluated: the same numbers as the
    # validation at the end of training (same images, same weights)
    (val, ) = [r for r in scalar_records(tiny_run['work_dir'])
               if 'accuracy/top1' in r]
    assert (val['accuracy/top1'], val['accuracy/top5']) == (top1, top5)


def test_tiny_v1c18_checkpoint_into_finetune_backbone(tiny_run):
    ckpt = tiny_run['work_dir'] / f'epoch_{TINY_EPOCHS}.pth'
    out = tiny_run['root'] / 'r3dv1c18_svd-in1k.pth'
    proc = run_tool(cwd=REPO, args=[EXTRACT, ckpt, out])
    assert re.search(r'dropped 2 tensors: head \(2\)', proc.stdout)

    trained = {
        k[len('backbone.'):]: v
        for k, v in torch.load(ckpt, map_location='cpu', weights_only=True)
        ['state_dict'].items() if k.startswith('backbone.')
    }
    # the deep stem is there: three 3x3x3 convolutions
    assert trained['stem.0.conv.weight'].shape == torch.Size([4, 1, 3, 3, 3])
    assert trained['stem.2.conv.weight'].shape == torch.Size([8, 4, 3, 3, 3])
    # fine-tuning strides: full-resolution stem, D halved from stage 2 on
    finetune = MODELS.build(
        dict(
            type='ResNet3DV1c',
            depth=18,
            base_channels=TINY_WIDTH,
            stem_stride=1,
            slice_strides=(1, 2, 2, 2),
            out_indices=(0, 1, 2, 3),
            init_cfg=dict(type='Pretrained', checkpoint=str(out))))
    finetune.init_weights()
    loaded = finetune.state_dict()
    assert sorted(loaded) == sorted(trained)
    for key, value in trained.items():
        assert torch.equal(loaded[key], value), key
    finetune.eval()
    with torch.no_grad():
        feats = finetune(torch.rand(1, 1, 12, 40, 32))
    assert [f.shape for f in feats] == [
        torch.Size([1, 8, 12, 20, 16]),
        torch.Size([1, 16, 6, 10, 8]),
        torch.Size([1, 32, 3, 5, 4]),
        torch.Size([1, 64, 2, 3, 2])
    ]
