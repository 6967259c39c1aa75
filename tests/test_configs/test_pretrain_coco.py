"""Issue: pre-training pipelines, COCO detection with GTM (mmdet).

The configs of ``configs/pretrain/coco`` (Faster R-CNN, GTM + FPN, GN
everywhere, from scratch, 72 epochs; ResNet3D-18, -50, ResNet3DV1c-18 and
P3D-63 backbones in pre-train mode) are checked as configs and as built
backbone + neck. Then the real ResNet3D-18 and P3D-63 configs, shrunk by a
``_base_`` override (width 8, GN with 4 groups, FPN of 16 channels, shorter
side 224/256, few proposals), train a few iterations with
``tools/train.py`` on a real photo with real boxes (``terrain2.png`` of the
sahi sdist, 5 cars in COCO format); ``tools/test.py`` runs mmdet's
``CocoMetric`` on it, and the backbone of the checkpoint, extracted by
``tools/model_converters/extract_backbone.py``, loads into fine-tuning
backbones with other D strides.
"""
import json
import math
import os
import os.path as osp
import runpy

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import MODELS

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers.tools import config_header, run_tool, scalar_records
from tests.helpers.data_cache import fetch_sahi_coco

register_all_modules(init_default_scope=False)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'pretrain', 'coco')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
EXTRACT = osp.join(REPO, 'tools', 'model_converters', 'extract_backbone.py')
LOSS_KEYS = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox')

# [config, backbone type, depth, channels of the 4 levels, Table II target
#  (bbox mAP on COCO val) in the header]
CONFIG_TABLE = [
    ('faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py', 'ResNet3D', 18,
     [64, 128, 256, 512], 'box AP 34.2'),
    ('faster-rcnn_r3d50_gtm-fpn_8xb2-72e_coco.py', 'ResNet3D', 50,
     [256, 512, 1024, 2048], 'box AP 37.0'),
    ('faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco.py', 'ResNet3DV1c', 18,
     [64, 128, 256, 512], 'Paper: not reported'),
    ('faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py', 'P3D', 63,
     [256, 512, 1024, 2048], 'box AP 36.5'),
]

# The tiny runs: {base} is a real config, {channels} its 4 level widths at
# base_channels {width}. 1 photo x 4 (RepeatDataset), batch 2, 2 epochs: 4
# training iterations at shorter side 224 or 256 (multi-scale); the test
# keeps every box (score_thr=0) so that CocoMetric has detections to score.
TINY_WIDTH = 8
TINY_OVERRIDE = """\
_base_ = [{base!r}]
data_root = {data_root!r}
ann_file = {ann_file!r}
metainfo = dict(classes=('car', ))
in_channels = {channels}
fpn_channels = 16
norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
model = dict(
    backbone=dict(base_channels={width}, norm_cfg=norm_cfg),
    neck=[
        dict(
            type='GTMNeck',
            in_channels=in_channels,
            depths=[3, 3, 3, 3],
            mode='group_conv',
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=in_channels,
            out_channels=fpn_channels,
            num_outs=5,
            norm_cfg=norm_cfg),
    ],
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(
            in_channels=fpn_channels,
            conv_out_channels=fpn_channels,
            fc_out_channels=32,
            num_classes=1,
            norm_cfg=norm_cfg)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=50),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=50), rcnn=dict(score_thr=0.0)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(400, 224), (400, 256)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(type='PackDetVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(400, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RGBToVolume', slice_order='rgb'),
    dict(
        type='PackDetVolumeInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=4,
        dataset=dict(
            type='CocoDataset',
            data_root=data_root,
            ann_file=ann_file,
            metainfo=metainfo,
            data_prefix=dict(img=''),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=ann_file,
        metainfo=metainfo,
        data_prefix=dict(img=''),
        pipeline=test_pipeline))
test_evaluator = dict(ann_file=data_root + ann_file)
# no validation while training; tools/test.py evaluates
val_dataloader = None
val_cfg = None
val_evaluator = None
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[1],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=max_epochs))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
"""


def config_path(name):
    return osp.join(CONFIG_DIR, name)


def find_norm_cfgs(cfg, path='model'):
    """(path, norm_cfg) of every ``norm_cfg`` in a nested config."""
    found = []
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'norm_cfg':
                found.append((f'{path}.{key}', value))
            else:
                found += find_norm_cfgs(value, f'{path}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            found += find_norm_cfgs(value, f'{path}.{i}')
    return found


# --------------------------------------------------------------------------
# the configs
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name,backbone,depth,channels,target', CONFIG_TABLE)
def test_config_is_its_table_row(name, backbone, depth, channels, target):
    cfg = Config.fromfile(config_path(name))
    assert target in config_header(config_path(name))
    assert 'AMP' in open(config_path(name)).read()
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['svd_mm']
    model = cfg.model
    assert model.type == 'FasterRCNN'
    assert model.data_preprocessor == dict(
        type='VolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_size_divisor=32)
    # pre-train mode from scratch: no stride along D, no pre-trained init
    assert (model.backbone.type, model.backbone.depth) == (backbone, depth)
    assert model.backbone.init_cfg is None
    assert model.backbone.out_indices == (0, 1, 2, 3)
    for key in ('slice_strides', 'stem_slice_stride', 'maxpool_slice_stride',
                'slice_pool_stages'):
        assert key not in model.backbone, key
    gtm, fpn = model.neck
    assert gtm == dict(
        type='GTMNeck',
        in_channels=channels,
        depths=[3, 3, 3, 3],
        mode='group_conv',
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    assert (fpn.type, fpn.in_channels, fpn.out_channels,
            fpn.num_outs) == ('FPN', channels, 256, 5)
    assert model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
    assert model.roi_head.bbox_head.num_classes == 80
    # GN with 32 groups everywhere a norm is configured
    norms = dict(find_norm_cfgs(model))
    assert sorted(norms) == [
        'model.backbone.norm_cfg', 'model.neck.0.norm_cfg',
        'model.neck.1.norm_cfg', 'model.roi_head.bbox_head.norm_cfg'
    ]
    for path, norm_cfg in norms.items():
        assert norm_cfg == dict(
            type='GN', num_groups=32, requires_grad=True), path


@pytest.mark.parametrize('name', [row[0] for row in CONFIG_TABLE])
def test_config_data_and_schedule(name):
    cfg = Config.fromfile(config_path(name))
    train = cfg.train_dataloader
    assert (train.batch_size, train.dataset.type) == (2, 'CocoDataset')
    assert [t.type for t in train.dataset.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomChoiceResize',
        'RandomFlip', 'RGBToVolume', 'PackDetVolumeInputs'
    ]
    resize = train.dataset.pipeline[2]
    assert resize.keep_ratio
    # (max long side, shorter side): multi-scale shorter side 384..640
    assert [short for _, short in resize.scales] == [384, 448, 512, 576, 640]
    assert {long for long, _ in resize.scales} == {1066}
    assert train.dataset.pipeline[3].prob == 0.5
    test = cfg.test_dataloader.dataset.pipeline
    assert [t.type for t in test] == [
        'LoadImageFromFile', 'Resize', 'LoadAnnotations', 'RGBToVolume',
        'PackDetVolumeInputs'
    ]
    assert test[1].scale == (1066, 512)
    assert cfg.test_evaluator.type == 'CocoMetric'

    # 72 epochs, SGD 0.02 / 0.9 / 1e-4, warm-up, steps at 48 and 66
    assert cfg.train_cfg.max_epochs == 72
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch) == ('LinearLR', False)
    assert (steps.type, steps.milestones, steps.end) == ('MultiStepLR',
                                                         [48, 66], 72)
    assert cfg.auto_scale_lr.base_batch_size == 16  # 8 GPUs x 2 images


@pytest.mark.parametrize('name,backbone,depth,channels,target', CONFIG_TABLE)
def test_backbone_and_necks_keep_depth_3_then_2d(name, backbone, depth,
                                                 channels, target):
    cfg = Config.fromfile(config_path(name))
    backbone = MODELS.build(cfg.model.backbone)
    neck = DET_MODELS.build(cfg.model.neck)  # GTM + FPN as one Sequential
    backbone.eval()
    neck.eval()
    with torch.no_grad():
        feats = backbone(torch.rand(1, 1, 3, 64, 96))
        outs = neck(feats)
    assert [f.shape for f in feats] == [
        torch.Size([1, c, 3, 16 // 2**i, 24 // 2**i])
        for i, c in enumerate(channels)
    ]
    assert [o.shape for o in outs] == [
        torch.Size([1, 256, 16, 24]),
        torch.Size([1, 256, 8, 12]),
        torch.Size([1, 256, 4, 6]),
        torch.Size([1, 256, 2, 3]),
        torch.Size([1, 256, 1, 2])
    ]


@pytest.mark.parametrize('name', [
    'faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py',
    'faster-rcnn_r3dv1c18_gtm-fpn_8xb2-72e_coco.py',
    'faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py'
])
def test_depth_strided_variant_by_cfg_options(name):
    # the "without depth modification" pre-training of configs/deeplesion:
    # D strided 3 -> 3, 2, 1, 1 by two --cfg-options (list index 0 of neck)
    cfg = Config.fromfile(config_path(name))
    cfg.merge_from_dict({
        'model.backbone.slice_strides': (1, 2, 2, 2),
        'model.neck.0.depths': [3, 2, 1, 1]
    })
    backbone = MODELS.build(cfg.model.backbone)
    neck = DET_MODELS.build(cfg.model.neck)
    backbone.eval()
    neck.eval()
    with torch.no_grad():
        feats = backbone(torch.rand(1, 1, 3, 64, 96))
        outs = neck(feats)
    assert [f.size(2) for f in feats] == [3, 2, 1, 1]
    assert [o.shape[1:] for o in outs] == [
        torch.Size([256, 16 // 2**i, 24 // 2**i]) for i in range(4)
    ] + [torch.Size([256, 1, 2])]


def test_sahi_annotation_is_one_car_class():
    data = fetch_sahi_coco()
    with open(data['ann_file']) as f:
        coco = json.load(f)
    # the classes=('car', ) of the tiny configs match the json
    assert [(c['id'], c['name']) for c in coco['categories']] == [(1, 'car')]
    assert [img['file_name'] for img in coco['images']] == [
        osp.basename(data['image'])
    ]
    assert len(coco['annotations']) == 5
    assert {a['category_id'] for a in coco['annotations']} == {1}


# --------------------------------------------------------------------------
# tiny runs of the real R3D-18 and P3D-63 configs on a real photo
# --------------------------------------------------------------------------
TINY_ROWS = {
    'r3d18': ('faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py',
              [TINY_WIDTH * 2**i for i in range(4)]),
    'p3d63': ('faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py',
              [TINY_WIDTH * 4 * 2**i for i in range(4)]),
}


@pytest.fixture(scope='module', params=sorted(TINY_ROWS))
def tiny_run(request, tmp_path_factory):
    name, channels = TINY_ROWS[request.param]
    root = tmp_path_factory.mktemp(f'pretrain_coco_{request.param}')
    data = fetch_sahi_coco()
    config = root / f'faster-rcnn_{request.param}-w8_gtm-fpn_terrain2.py'
    config.write_text(
        TINY_OVERRIDE.format(
            base=config_path(name),
            data_root=osp.dirname(data['ann_file']) + os.sep,
            ann_file=osp.basename(data['ann_file']),
            channels=channels,
            width=TINY_WIDTH))
    work_dir = root / 'work'
    run_tool(cwd=REPO, args=[TRAIN, config, '--work-dir', work_dir])
    return dict(
        arch=request.param,
        root=root,
        config=config,
        work_dir=work_dir,
        ckpt=work_dir / 'epoch_2.pth')


def test_tiny_training_losses_are_finite(tiny_run):
    records = [
        r for r in scalar_records(tiny_run['work_dir']) if 'loss' in r
    ]
    # 1 photo x 4, batch 2, 2 epochs
    assert [(r['epoch'], r['iter']) for r in records] == [(1, 1), (1, 2),
                                                          (2, 3), (2, 4)]
    for record in records:
        for key in LOSS_KEYS:
            assert math.isfinite(record[key]), (key, record)
        assert record['loss'] == pytest.approx(
            sum(record[key] for key in LOSS_KEYS), rel=1e-3)
    state_dict = torch.load(
        tiny_run['ckpt'], map_location='cpu', weights_only=True)['state_dict']
    # one class + background
    assert state_dict['roi_head.bbox_head.fc_cls.weight'].shape == \
        torch.Size([2, 32])


def test_tiny_test_tool_runs_coco_metric(tiny_run):
    out = tiny_run['root'] / 'metrics.json'
    run_tool(cwd=REPO, args=[
        TEST, tiny_run['config'], tiny_run['ckpt'], '--work-dir',
        tiny_run['root'] / 'test', '--out', out
    ])
    metrics = json.loads(out.read_text())
    assert isinstance(metrics['coco/bbox_mAP'], float)
    assert 0. <= metrics['coco/bbox_mAP'] <= metrics['coco/bbox_mAP_50'] <= 1.
    # every annotation's 'area' in the sahi json is the image area
    # (698368 px): no small or medium objects to score
    assert metrics['coco/bbox_mAP_s'] == metrics['coco/bbox_mAP_m'] == -1.


def test_tiny_checkpoint_into_finetune_backbone(tiny_run):
    # the converter's own function (its CLI is covered by the ImageNet test)
    extract_backbone = runpy.run_path(EXTRACT)['extract_backbone']
    out = tiny_run['root'] / 'backbone.pth'
    result = extract_backbone(str(tiny_run['ckpt']), str(out))
    assert set(result['dropped_prefixes']) == {'neck', 'rpn_head', 'roi_head'}
    trained = {
        k[len('backbone.'):]: v
        for k, v in torch.load(
            tiny_run['ckpt'], map_location='cpu', weights_only=True)
        ['state_dict'].items() if k.startswith('backbone.')
    }
    gn = dict(type='GN', num_groups=4, requires_grad=True)
    init_cfg = dict(type='Pretrained', checkpoint=str(out))
    if tiny_run['arch'] == 'r3d18':
        # DeepLesion-like: 9 slices, D strided to 9, 5, 3, 1
        finetune = MODELS.build(
            dict(
                type='ResNet3D',
                depth=18,
                base_channels=TINY_WIDTH,
                slice_strides=(1, 2, 2, 3),
                out_indices=(0, 1, 2, 3),
                norm_cfg=gn,
                init_cfg=init_cfg))
        expected = [(8, 9, 16, 12), (16, 5, 8, 6), (32, 3, 4, 3),
                    (64, 1, 2, 2)]
    else:
        # the same depths by max-pooling along D after stages 2-4
        finetune = MODELS.build(
            dict(
                type='P3D',
                depth=63,
                base_channels=TINY_WIDTH,
                slice_pool_stages=(1, 2, 3),
                out_indices=(0, 1, 2, 3),
                norm_cfg=gn,
                init_cfg=init_cfg))
        expected = [(32, 9, 16, 12), (64, 5, 8, 6), (128, 3, 4, 3),
                    (256, 1, 2, 2)]
    finetune.init_weights()
    loaded = finetune.state_dict()
    assert sorted(loaded) == sorted(trained)
    for key, value in trained.items():
        assert torch.equal(loaded[key], value), key
    finetune.eval()
    with torch.no_grad():
        feats = finetune(torch.rand(1, 1, 9, 64, 48))
    assert [f.shape for f in feats] == [
        torch.Size([1, *shape]) for shape in expected
    ]
