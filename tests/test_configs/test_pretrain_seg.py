"""Issue: semantic-segmentation pre-training through the VDT (mmseg), and its
transfer rows.

The configs of ``configs/pretrain/seg`` (UPerNet with GTM on ADE20K,
COCO-Stuff-164k, Cityscapes and VOC-aug; ResNet3D-18, -50 and
ResNet3DV1c-18 in pre-train mode) are checked as configs and as built
models; every new config (pre-training and transfer rows) builds under its
toolbox's default scope with only ``custom_imports``. Then the real ADE20K
config, shrunk (width 8, 128x128 crops, 2 classes), trains with
``tools/train.py`` on a real photo with a real semantic map (the sahi
``terrain2`` COCO polygons rasterised, in ADE20K's layout), ``tools/test.py``
reports mIoU, and the checkpoint's backbone, extracted by
``tools/model_converters/extract_backbone.py``, loads completely into the
fine-tuning ResNet3D of the LIDC segmentation row.
"""
import importlib
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import DefaultScope, init_default_scope

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers.ade20k_layout import layout_terrain2_ade20k
from tests.helpers.tools import config_header, run_tool, scalar_records

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
SEG_DIR = osp.join(CONFIGS, 'pretrain', 'seg')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
EXTRACT = osp.join(REPO, 'tools', 'model_converters', 'extract_backbone.py')

# [config, backbone type, depth, level channels, classes, iterations,
#  images per GPU, mmseg dataset type]
CONFIG_TABLE = [
    ('upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py', 'ResNet3D', 18,
     [64, 128, 256, 512], 150, 160000, 4, 'ADE20KDataset'),
    ('upernet_r3d50_gtm_4xb4-160k_ade20k-512x512.py', 'ResNet3D', 50,
     [256, 512, 1024, 2048], 150, 160000, 4, 'ADE20KDataset'),
    ('upernet_r3dv1c18_gtm_4xb4-160k_ade20k-512x512.py', 'ResNet3DV1c', 18,
     [64, 128, 256, 512], 150, 160000, 4, 'ADE20KDataset'),
    ('upernet_r3d18_gtm_4xb4-80k_coco-stuff164k-512x512.py', 'ResNet3D', 18,
     [64, 128, 256, 512], 171, 80000, 4, 'COCOStuffDataset'),
    ('upernet_r3d18_gtm_4xb2-80k_cityscapes-512x1024.py', 'ResNet3D', 18,
     [64, 128, 256, 512], 19, 80000, 2, 'CityscapesDataset'),
    ('upernet_r3d18_gtm_4xb4-40k_voc12aug-512x512.py', 'ResNet3D', 18,
     [64, 128, 256, 512], 21, 40000, 4, 'PascalVOCDataset'),
]

# [row config, the SVD-Net ImageNet row it inherits, init field]
TRANSFER_ROWS = [
    (f'{folder}/{stem.format(init=init)}', f'{folder}/'
     f"{stem.format(init='svd-in1k')}", init)
    for init in ('svd-ade20k-seg', 'svd-cocostuff-seg')
    for folder, stem in (
        ('lidc/seg', 'fcn3d_r3d18-{init}_4xb4-100e_lidc-seg-48.py'),
        ('lidc/cls', 'cls3d_r3d18-{init}_gap-linear_4xb32-100e_lidc-cls-48.py'
         ), ('lits', 'unet3d_r3d18-{init}_8xb2-500e_lits-32x256x256.py'))
]


def seg_config(name):
    return osp.join(SEG_DIR, name)


def train_datasets(cfg):
    """The dataset configs of a training dataloader (VOC-aug: two)."""
    dataset = cfg.train_dataloader.dataset
    return dataset.datasets if dataset.type == 'ConcatDataset' else [dataset]


# --------------------------------------------------------------------------
# the configs
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    'name,backbone,depth,channels,classes,iters,batch,dataset',
    CONFIG_TABLE)
def test_config_is_mmseg_upernet_with_vdt(name, backbone, depth, channels,
                                          classes, iters, batch, dataset):
    cfg = Config.fromfile(seg_config(name))
    header = config_header(seg_config(name))
    assert 'no such row in the paper' in header
    assert 'not reported' in header
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports.imports == ['svd_mm']
    model = cfg.model
    assert model.type == 'PseudoVolumeEncoderDecoder'
    assert model.data_preprocessor.type == 'SegVolumeDataPreprocessor'
    assert model.data_preprocessor.label_dims == 2
    # pre-train mode: no stride along D anywhere, D=3 for the GTM
    assert (model.backbone.type, model.backbone.depth) == (backbone, depth)
    for key in ('slice_strides', 'stem_slice_stride', 'maxpool_slice_stride'):
        assert key not in model.backbone, key
    assert model.backbone.init_cfg.checkpoint == \
        f'checkpoints/{name.split("_")[1]}-svd-in1k_backbone.pth'
    assert model.neck == dict(
        type='GTMNeck',
        in_channels=channels,
        depths=[3, 3, 3, 3],
        mode='group_conv',
        norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert (model.decode_head.type, model.decode_head.in_channels,
            model.decode_head.num_classes) == ('UPerHead', channels, classes)
    assert (model.auxiliary_head.in_channels, model.auxiliary_head.in_index,
            model.auxiliary_head.num_classes) == (channels[2], 2, classes)
    # mmseg's data and schedule
    assert cfg.train_cfg.max_iters == iters
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].end == iters
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.test_evaluator.type == 'IoUMetric'
    for train in train_datasets(cfg):
        assert train.type == dataset
        types = [t.type for t in train.pipeline]
        assert types[:2] == ['LoadImageFromFile', 'LoadAnnotations']
        assert {'RandomResize', 'RandomCrop', 'RandomFlip',
                'PhotoMetricDistortion'} <= set(types)
        # the VDT comes after every 2D transform
        assert types[-2:] == ['RGBToVolume', 'PackSegVolumeInputs']
        assert 'PackSegInputs' not in types
    test = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert test == [
        'LoadImageFromFile', 'Resize', 'LoadAnnotations', 'RGBToVolume',
        'PackSegVolumeInputs'
    ]
    assert cfg.val_dataloader.dataset.pipeline == \
        cfg.test_dataloader.dataset.pipeline


def test_head_matches_mmseg_resnet18_upernet():
    # the 2D comparison of benchmarks/pretrain_step.py: same head and losses
    ours = Config.fromfile(seg_config(CONFIG_TABLE[0][0])).model
    theirs = get_config(
        'mmseg::upernet/upernet_r18_4xb4-160k_ade20k-512x512.py').model
    assert ours.decode_head == theirs.decode_head
    assert ours.auxiliary_head == theirs.auxiliary_head


def build_under_scope(path):
    """Build the model, transforms and dataset class of a config under its
    default scope, importing only its ``custom_imports``."""
    cfg = Config.fromfile(path)
    for module in cfg.custom_imports.imports:
        importlib.import_module(module)
    registry = importlib.import_module(f'{cfg.default_scope}.registry')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        cfg.model.backbone.init_cfg = None
        model = registry.MODELS.build(cfg.model)
        for loader in ('train_dataloader', 'test_dataloader'):
            dataset = cfg[loader].dataset
            for d in getattr(dataset, 'datasets', [dataset]):
                d = d.get('dataset', d)
                assert registry.DATASETS.get(d.type) is not None, d.type
                for transform in d.pipeline:
                    registry.TRANSFORMS.build(transform)
    return cfg, model


@pytest.mark.parametrize(
    'path', [osp.join('pretrain/seg', row[0]) for row in CONFIG_TABLE] +
    [row[0] for row in TRANSFER_ROWS])
def test_every_new_config_builds_in_its_scope(path):
    cfg, model = build_under_scope(osp.join(CONFIGS, path))
    if path.startswith('pretrain'):
        assert cfg.default_scope == 'mmseg'
        assert type(model).__name__ == 'PseudoVolumeEncoderDecoder'


@pytest.mark.parametrize('row,svd_row,init', TRANSFER_ROWS)
def test_transfer_row_changes_only_the_init(row, svd_row, init):
    header = config_header(osp.join(CONFIGS, row))
    assert 'No such row in the paper' in header
    assert 'not reported' in header
    cfg = Config.fromfile(osp.join(CONFIGS, row))
    svd = Config.fromfile(osp.join(CONFIGS, svd_row))
    init_file = Config.fromfile(
        osp.join(CONFIGS, '_base_', 'inits', f'{init}_r3d18.py'))
    # the row is its SVD row with the backbone_init of its init file
    expected = svd.to_dict()
    expected['model']['backbone'].update(init_file.backbone_init.to_dict())
    got = cfg.to_dict()
    assert got['model'] == expected['model']
    assert got['model']['backbone']['init_cfg']['checkpoint'] == \
        f'checkpoints/r3d18-{init}_backbone.pth'
    for key in set(got) | set(expected):
        if key not in ('model', 'backbone_init'):
            assert got.get(key) == expected.get(key), key


# --------------------------------------------------------------------------
# a tiny run of the real ADE20K config on a real photo with a real map
# --------------------------------------------------------------------------
TINY_ITERS = 12
TINY_WIDTH = 8


def tiny_ade20k_config(data_root, classes):
    """The real R3D-18 ADE20K config at width 8, 128x128 crops, 2 classes,
    12 iterations of 2 crops, no validation while training."""
    cfg = Config.fromfile(seg_config(CONFIG_TABLE[0][0]))
    channels = [TINY_WIDTH * 2**i for i in range(4)]
    head = dict(channels=16, num_classes=len(classes))
    cfg.merge_from_dict({
        'model.backbone.base_channels': TINY_WIDTH,
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': channels,
        'model.decode_head': dict(head, in_channels=channels),
        'model.auxiliary_head': dict(head, in_channels=channels[2]),
        # image short side 128 x [0.5, 2], 128x128 crops; tests at 128
        'train_dataloader.dataset.pipeline.2.scale': (512, 128),
        'train_dataloader.dataset.pipeline.3.crop_size': (128, 128),
        'test_dataloader.dataset.pipeline.1.scale': (512, 128),
    })
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(
            data_root=data_root, metainfo=dict(classes=classes))
    cfg.train_dataloader.batch_size = 2
    cfg.merge_from_dict({
        'train_cfg.max_iters': TINY_ITERS,
        'train_cfg.val_interval': TINY_ITERS * 10,
        'param_scheduler.0.end': TINY_ITERS,
        'optim_wrapper.optimizer.lr': 0.05,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': TINY_ITERS,
        'randomness': dict(seed=0),
    })
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_evaluator.iou_metrics = ['mIoU']
    return cfg


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('pretrain_seg')
    layout = layout_terrain2_ade20k(str(root / 'ade'))
    config = root / 'upernet_r3d18-w8_gtm_1xb2-12i_terrain2-ade20k.py'
    tiny_ade20k_config(layout['data_root'], layout['classes']).dump(config)
    work_dir = root / 'work'
    run_tool(cwd=REPO, args=[TRAIN, config, '--work-dir', work_dir])
    return dict(
        root=root,
        layout=layout,
        config=config,
        work_dir=work_dir,
        ckpt=work_dir / f'iter_{TINY_ITERS}.pth')


def test_terrain2_map_is_two_real_classes(tmp_path):
    layout = layout_terrain2_ade20k(str(tmp_path))
    assert layout['classes'] == ('earth', 'car')
    assert layout['shape'] == (682, 1024)
    # five car polygons (boxes 222x161, 121x92, 81x56, 70x51, 40x47; the
    # last two overlap by 4x28 pixels); the rest of the photo is earth
    assert layout['pixels']['car'] == 56860 - 4 * 28
    assert sum(layout['pixels'].values()) == 682 * 1024


def test_tiny_training_losses_fall(tiny_run):
    records = [
        r for r in scalar_records(tiny_run['work_dir']) if 'loss' in r
    ]
    assert [r['iter'] for r in records] == list(range(1, TINY_ITERS + 1))
    keys = ('decode.loss_ce', 'aux.loss_ce')
    for record in records:
        for key in keys:
            assert math.isfinite(record[key]), (key, record)
        assert record['loss'] == pytest.approx(
            sum(record[key] for key in keys), rel=1e-3)
    losses = [r['loss'] for r in records]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses
    state_dict = torch.load(
        tiny_run['ckpt'], map_location='cpu',
        weights_only=True)['state_dict']
    # 2 classes, 2D head on (N, 8, H/4, W/4) ... GTM levels
    assert state_dict['decode_head.conv_seg.weight'].shape == \
        torch.Size([2, 16, 1, 1])
    assert state_dict['neck.convs.0.weight'].shape == \
        torch.Size([TINY_WIDTH, 3, 1, 1])


def test_tiny_test_tool_reports_miou(tiny_run):
    out = tiny_run['root'] / 'metrics.json'
    proc = run_tool(cwd=REPO, args=[
        TEST, tiny_run['config'], tiny_run['ckpt'], '--work-dir',
        tiny_run['root'] / 'test', '--out', out
    ])
    metrics = json.loads(out.read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == metrics
    assert set(metrics) == {'aAcc', 'mIoU', 'mAcc'}
    assert 0. < metrics['mIoU'] <= 100.
    assert 0. < metrics['aAcc'] <= 100.


def test_checkpoint_transfers_to_lidc_seg_backbone(tiny_run):
    dst = tiny_run['root'] / 'r3d18-svd-ade20k-seg_backbone.pth'
    proc = run_tool(cwd=REPO, args=[EXTRACT, tiny_run['ckpt'], dst])
    # the GTM and both heads are dropped
    dropped = proc.stdout.splitlines()[1]
    assert dropped.startswith('dropped ')
    assert sorted(name.split(' (')[0] for name in dropped.split(': ')[1]
                  .split(', ')) == ['auxiliary_head', 'decode_head', 'neck']
    source = torch.load(
        tiny_run['ckpt'], map_location='cpu',
        weights_only=True)['state_dict']
    backbone = {
        k[len('backbone.'):]: v
        for k, v in source.items() if k.startswith('backbone.')
    }
    # the fine-tuning backbone of the LIDC segmentation row (strides along
    # D, stem stride 1, no max-pool) at width 8, loading the checkpoint
    row = Config.fromfile(
        osp.join(CONFIGS, TRANSFER_ROWS[0][0])).model.backbone
    assert row.slice_strides == (1, 2, 1, 2)
    row.update(
        base_channels=TINY_WIDTH,
        init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    target = MODELS.build(row)
    target.init_weights()
    target_state = target.state_dict()
    # every tensor of both sides is matched and copied
    assert set(target_state) == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(target_state[key], value), key
    # and the fine-tuning backbone runs on a 48^3 LIDC crop
    target.eval()
    with torch.no_grad():
        (out, ) = target(torch.rand(1, 1, 48, 48, 48))
    assert out.shape == torch.Size([1, TINY_WIDTH * 8, 12, 12, 12])


@pytest.mark.parametrize(
    'path,init',
    [(osp.join('pretrain/seg', row[0]), 'svd-in1k') for row in CONFIG_TABLE] +
    [(row[0], row[2]) for row in TRANSFER_ROWS])
def test_metafile_entry_says_not_reported(path, init):
    import yaml
    folder, name = osp.split(path)
    with open(osp.join(CONFIGS, folder, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    collections = {c['Name'] for c in meta['Collections']}
    (entry, ) = [
        m for m in meta['Models'] if m['Name'] == osp.splitext(name)[0]
    ]
    assert entry['Config'] == f'configs/{path}'
    assert entry['In Collection'] in collections
    assert entry['Metadata']['Init'] == init
    assert entry['Metadata']['Paper Table'] == 'none'
    assert entry['Metadata']['Paper Result'] == 'not reported'
    assert 'Results' not in entry
