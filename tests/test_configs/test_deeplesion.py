"""Issue: NIH DeepLesion universal lesion detection with 3D backbones, GTM
and FROC (Tables VI and VII).

The configs of ``configs/deeplesion`` (Faster R-CNN, GTM + FPN, 9 slices of
2.5 mm; ResNet3D-18, ResNet3DV1c-18 and P3D-63 in fine-tune mode with depths
9, 5, 3, 1; Scratch / SVD ImageNet / SVD COCO rows of Table VI and the
COCO-without-depth-modification rows of Table VII) are checked as configs,
built at tiny width, and their pre-trained rows load a tiny backbone of the
matching pre-training config tensor for tensor. Then a DeepLesion-layout
mini set made from the real pyradiomics chest CTs is converted by
``tools/dataset_converters/prepare_deeplesion.py``, and the real R3D-18 and
P3D-63 scratch configs, shrunk with ``--cfg-options`` only (width 8, GN with
4 groups, FPN of 16 channels, image side 160-192, few proposals), train 3
iterations with ``tools/train.py`` and are evaluated end to end by
``tools/test.py`` (``FROCMetric``, with the FROC curve PNG).
"""
import argparse
import json
import math
import os
import os.path as osp

import cv2
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers.tools import config_header, run_tool, scalar_records
from tests.helpers.deeplesion_layout import build_deeplesion_layout_from_ct

register_all_modules(init_default_scope=False)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'deeplesion')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
PREPARE = osp.join(REPO, 'tools', 'dataset_converters',
                   'prepare_deeplesion.py')
LOSS_KEYS = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox')
FROC_KEYS = ('froc/sens@0.5', 'froc/sens@1', 'froc/sens@2', 'froc/sens@4')

R3D_CHANNELS = [64, 128, 256, 512]
P3D_CHANNELS = [256, 512, 1024, 2048]
GN32 = dict(type='GN', num_groups=32, requires_grad=True)
FROZEN_BN = dict(type='BN3d', requires_grad=False)


def name_of(arch, init):
    return f'faster-rcnn_{arch}-{init}_gtm-fpn_8xb2-24e_deeplesion.py'


# [config, table, backbone type, depth, channels of the 4 levels, init,
#  the paper's number in the header (../shared/PAPER_TABLES.md)]
CONFIG_TABLE = [
    (name_of('r3d18', 'scratch'), 'Table VI', 'ResNet3D', 18,
     R3D_CHANNELS, 'scratch', 'mFROC 76.57'),
    (name_of('r3d18', 'svd-in1k'), 'Table VI', 'ResNet3D', 18,
     R3D_CHANNELS, 'svd-in1k', 'mFROC 83.30'),
    (name_of('r3d18', 'svd-coco'), 'Table VI', 'ResNet3D', 18,
     R3D_CHANNELS, 'svd-coco', 'mFROC 83.76'),
    (name_of('r3d18', 'svd-coco-nodepthmod'), 'Table VII', 'ResNet3D', 18,
     R3D_CHANNELS, 'svd-coco-nodepthmod', 'Paper: not reported'),
    (name_of('r3dv1c18', 'scratch'), 'Table VI', 'ResNet3DV1c', 18,
     R3D_CHANNELS, 'scratch', 'Paper: not reported'),
    (name_of('r3dv1c18', 'svd-in1k'), 'Table VI', 'ResNet3DV1c', 18,
     R3D_CHANNELS, 'svd-in1k', 'Paper: not reported'),
    (name_of('r3dv1c18', 'svd-coco'), 'Table VI', 'ResNet3DV1c', 18,
     R3D_CHANNELS, 'svd-coco', 'mFROC 86.26'),
    (name_of('r3dv1c18', 'svd-coco-nodepthmod'), 'Table VII', 'ResNet3DV1c',
     18, R3D_CHANNELS, 'svd-coco-nodepthmod', 'mFROC 83.76'),
    (name_of('p3d63', 'scratch'), 'Table VI', 'P3D', 63,
     P3D_CHANNELS, 'scratch', 'Paper: not reported'),
    (name_of('p3d63', 'svd-in1k'), 'Table VI', 'P3D', 63,
     P3D_CHANNELS, 'svd-in1k', 'Paper: not reported'),
    (name_of('p3d63', 'svd-coco'), 'Table VI', 'P3D', 63,
     P3D_CHANNELS, 'svd-coco', 'mFROC 88.55'),
    (name_of('p3d63', 'svd-coco-nodepthmod'), 'Table VII', 'P3D', 63,
     P3D_CHANNELS, 'svd-coco-nodepthmod', 'Paper: not reported'),
]

# The pre-training of each pre-trained row: [config, --cfg-options as
# written in the row's header]. Tiny backbones of these configs are what
# the rows' init_cfg must load completely.
IN1K = 'configs/pretrain/imagenet/vdt_{}_8xb32-100e_in1k.py'
COCO = 'configs/pretrain/coco/faster-rcnn_{}_gtm-fpn_8xb2-72e_coco.py'
NODEPTHMOD = ['model.backbone.slice_strides=(1,2,2,2)',
              'model.neck.0.depths=[3,2,1,1]']
PRETRAININGS = {
    name_of('r3d18', 'svd-in1k'): (IN1K.format('r3d18'), []),
    name_of('r3dv1c18', 'svd-in1k'): (IN1K.format('r3dv1c18'), []),
    # no P3D ImageNet config in the tree: the R3D-18 recipe, P3D swapped in
    name_of('p3d63', 'svd-in1k'):
    (IN1K.format('r3d18'), [
        'model.backbone.type=P3D', 'model.backbone.depth=63',
        'model.head.in_channels=2048'
    ]),
}
for _arch in ('r3d18', 'r3dv1c18', 'p3d63'):
    PRETRAININGS[name_of(_arch, 'svd-coco')] = (COCO.format(_arch), [])
    PRETRAININGS[name_of(_arch, 'svd-coco-nodepthmod')] = (COCO.format(_arch),
                                                           NODEPTHMOD)

TINY_WIDTH = 8
FPN_CHANNELS = 16


def tiny_channels(channels):
    return [c * TINY_WIDTH // 64 for c in channels]


def tiny_model_options(channels, gn_backbone=True):
    """``--cfg-options`` that shrink a DeepLesion detector: width 8, GN with
    4 groups, an FPN of 16 channels, a small box head, few proposals."""
    tiny = str(tiny_channels(channels)).replace(' ', '')
    options = [
        f'model.backbone.base_channels={TINY_WIDTH}',
        f'model.neck.0.in_channels={tiny}',
        'model.neck.0.norm_cfg.num_groups=4',
        f'model.neck.1.in_channels={tiny}',
        f'model.neck.1.out_channels={FPN_CHANNELS}',
        f'model.rpn_head.in_channels={FPN_CHANNELS}',
        f'model.rpn_head.feat_channels={FPN_CHANNELS}',
        f'model.roi_head.bbox_roi_extractor.out_channels={FPN_CHANNELS}',
        f'model.roi_head.bbox_head.in_channels={FPN_CHANNELS}',
        'model.roi_head.bbox_head.fc_out_channels=32',
        'model.train_cfg.rpn_proposal.nms_pre=200',
        'model.train_cfg.rpn_proposal.max_per_img=50',
        'model.train_cfg.rcnn.sampler.num=64',
        'model.test_cfg.rpn.nms_pre=200',
        'model.test_cfg.rpn.max_per_img=50',
    ]
    if gn_backbone:
        options.append('model.backbone.norm_cfg.num_groups=4')
    return options


def tiny_run_options(data_root, channels):
    """``--cfg-options`` of the tiny end-to-end runs on the mini set: the
    model of :func:`tiny_model_options`, image side 160/192 (test 160),
    batch 1, 3 epochs of the single training volume, no validation.

    The 512 x 512 slices shrink about 3 times, so the anchors are halved
    (scale 2: 8..128 px) to keep positive anchors for the ~24 px lesions.
    """
    return tiny_model_options(channels) + [
        'model.rpn_head.anchor_generator.scales=[2]',
        f'train_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.dataset.pipeline.2.scales=[(160,160),(192,192)]',
        'test_dataloader.dataset.pipeline.1.scale=(160,160)',
        'train_dataloader.batch_size=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'val_dataloader=None',
        'val_cfg=None',
        'val_evaluator=None',
        'train_cfg.max_epochs=3',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=3',
        'log_processor.window_size=1',
        'randomness.seed=0',
    ]


def parse_options(options):
    """Parse ``key=value`` strings as ``tools/train.py --cfg-options``."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options'] + list(options)).cfg_options


def config_path(name):
    return osp.join(CONFIG_DIR, name)


# --------------------------------------------------------------------------
# the configs
# --------------------------------------------------------------------------
# the ResNet3D-18 baseline rows (Med3D, Kinetics, I3D, ACS: frozen BN3d,
# converted public checkpoints), checked in test_baseline_rows.py
BASELINE_ROWS = [
    name_of('r3d18', init)
    for init in ('med3d', 'kinetics', 'i3d-in1k', 'acs-in1k')
]
# the rows from the released weights, checked in test_release_rows.py
RELEASE_ROWS = [
    name_of('r3d18', 'svd-release-in1k'),
    name_of('p3d63', 'mp3d-release-coco')
]


# Fig. 4: [fraction row, its Table VI row, fraction]
FRACTION_ROWS = [(name_of('r3d18', init)[:-3] + f'-{pct}pct.py',
                  name_of('r3d18', init), pct / 100)
                 for init in ('scratch', 'svd-coco', 'svd-in1k')
                 for pct in (20, 40, 60, 80)]


def test_every_config_is_in_the_table():
    rows = ([r[0] for r in CONFIG_TABLE] + BASELINE_ROWS + RELEASE_ROWS +
            [r[0] for r in FRACTION_ROWS])
    assert sorted(f for f in os.listdir(CONFIG_DIR)
                  if f.endswith('.py')) == sorted(rows)
    readme = open(osp.join(CONFIG_DIR, 'README.md')).read()
    for row in rows:
        assert row in readme, row


@pytest.mark.parametrize(
    'name,table,backbone,depth,channels,init,number',
    CONFIG_TABLE,
    ids=[row[0] for row in CONFIG_TABLE])
def test_config_is_its_table_row(name, table, backbone, depth, channels,
                                 init, number):
    cfg = Config.fromfile(config_path(name))
    text = config_header(config_path(name))
    assert table in text and number in text
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['svd_mm']
    model = cfg.model
    assert model.type == 'FasterRCNN'
    assert model.data_preprocessor == dict(
        type='VolumeDataPreprocessor',
        mean=[114.495],
        std=[57.63],
        pad_size_divisor=32)
    bb = model.backbone
    assert (bb.type, bb.depth, bb.in_channels) == (backbone, depth, 1)
    assert bb.out_indices == (0, 1, 2, 3)
    # fine-tune mode: 9 slices -> depths 9, 5, 3, 1
    if backbone == 'P3D':
        assert bb.slice_strides == (1, 1, 1, 1)
        assert bb.slice_pool_stages == (1, 2, 3)
    else:
        assert bb.slice_strides == (1, 2, 2, 3)
    gtm, fpn = model.neck
    assert gtm == dict(
        type='GTMNeck',
        in_channels=channels,
        depths=[9, 5, 3, 1],
        mode='group_conv',
        norm_cfg=GN32)
    assert fpn == dict(
        type='FPN', in_channels=channels, out_channels=256, num_outs=5)
    # anchors of 16..256 px: one scale of 4 on strides 4..64
    anchors = model.rpn_head.anchor_generator
    assert [anchors.scales[0] * s for s in anchors.strides] == [
        16, 32, 64, 128, 256
    ]
    assert model.roi_head.bbox_head.type == 'Shared2FCBBoxHead'
    assert model.roi_head.bbox_head.num_classes == 1
    assert model.test_cfg.rcnn.score_thr == 0.
    # norms and init
    if init == 'scratch':
        assert bb.norm_cfg == GN32 and not bb.norm_eval
        assert 'init_cfg' not in bb
    else:
        arch = name.split('_')[1].split('-')[0]
        assert bb.init_cfg == dict(
            type='Pretrained',
            checkpoint=f'checkpoints/{arch}-{init}_backbone.pth')
        if init == 'svd-in1k':
            # the ImageNet pre-training has BN3d: kept, frozen
            assert bb.norm_cfg == FROZEN_BN and bb.norm_eval
        else:
            # the COCO pre-training has GN (32 groups)
            assert bb.norm_cfg == GN32 and not bb.norm_eval
    # every row but the scratch ones names its pre-training and extraction
    if init != 'scratch':
        pretrain_config, options = PRETRAININGS[name]
        assert pretrain_config in text
        assert 'extract_backbone.py' in text
        for option in options:
            assert option in text, option


@pytest.mark.parametrize('name', [row[0] for row in CONFIG_TABLE])
def test_config_data_and_schedule(name):
    cfg = Config.fromfile(config_path(name))
    train = cfg.train_dataloader
    assert (train.batch_size, train.dataset.type) == (2, 'DeepLesionDataset')
    assert train.dataset.ann_file == 'annotations/deeplesion_train.json'
    assert train.dataset.data_prefix == dict(img='Images_png/')
    pipeline = train.dataset.pipeline
    assert [t.type for t in pipeline] == [
        'LoadDeepLesionSlices', 'LoadAnnotations', 'RandomChoiceResize',
        'RandomFlip', 'RandomFlip', 'SlicesToVolume', 'PackDetVolumeInputs'
    ]
    assert (pipeline[0].num_slices, pipeline[0].slice_spacing) == (9, 2.5)
    # multi-scale 384..640 (the 512 x 512 slices become s x s)
    assert pipeline[2].keep_ratio
    assert pipeline[2].scales == [(s, s) for s in (384, 448, 512, 576, 640)]
    assert [(t.prob, t.direction) for t in pipeline[3:5]] == [
        (0.5, 'horizontal'), (0.5, 'vertical')
    ]
    assert pipeline[5].flip_prob == 0.5  # z flip
    for split, loader in (('val', cfg.val_dataloader),
                          ('test', cfg.test_dataloader)):
        ann_file = f'annotations/deeplesion_{split}.json'
        assert loader.dataset.ann_file == ann_file
        test = loader.dataset.pipeline
        # boxes loaded after Resize: FROC in the original image frame
        assert [t.type for t in test] == [
            'LoadDeepLesionSlices', 'Resize', 'LoadAnnotations',
            'SlicesToVolume', 'PackDetVolumeInputs'
        ]
        assert test[1].scale == (512, 512)
        assert test[3].get('flip_prob', 0.) == 0.
    assert cfg.val_evaluator == cfg.test_evaluator == dict(type='FROCMetric')

    # 24 epochs, SGD 0.02 / 0.9 / 1e-4, warm-up, steps at 16 and 22
    assert cfg.train_cfg.max_epochs == 24
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.end) == ('LinearLR', False,
                                                          500)
    assert (steps.type, steps.milestones, steps.end) == ('MultiStepLR',
                                                         [16, 22], 24)
    assert cfg.auto_scale_lr.base_batch_size == 16  # 8 GPUs x 2 volumes


def tiny_config(name, channels):
    cfg = Config.fromfile(config_path(name))
    gn_backbone = cfg.model.backbone.norm_cfg.type == 'GN'
    cfg.merge_from_dict(
        parse_options(tiny_model_options(channels, gn_backbone)))
    return cfg


@pytest.mark.parametrize(
    'name,table,backbone,depth,channels,init,number',
    CONFIG_TABLE,
    ids=[row[0] for row in CONFIG_TABLE])
def test_config_builds_at_tiny_width(name, table, backbone, depth, channels,
                                     init, number):
    cfg = tiny_config(name, channels)
    model = DET_MODELS.build(cfg.model)  # no init_weights: no checkpoint
    model.eval()
    tiny = tiny_channels(channels)
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 1, 9, 64, 96))
        outs = model.neck(feats)
    assert [f.shape for f in feats] == [
        torch.Size([1, c, d, 16 // 2**i, 24 // 2**i])
        for i, (c, d) in enumerate(zip(tiny, [9, 5, 3, 1]))
    ]
    assert [o.shape for o in outs] == [
        torch.Size([1, FPN_CHANNELS, 16, 24]),
        torch.Size([1, FPN_CHANNELS, 8, 12]),
        torch.Size([1, FPN_CHANNELS, 4, 6]),
        torch.Size([1, FPN_CHANNELS, 2, 3]),
        torch.Size([1, FPN_CHANNELS, 1, 2])
    ]
    # one class + background
    assert model.roi_head.bbox_head.fc_cls.out_features == 2


@pytest.mark.parametrize('name', sorted(PRETRAININGS))
def test_pretrained_row_loads_its_pretraining_backbone(name, tmp_path):
    """A tiny backbone of the row's pre-training config (with the header's
    --cfg-options) transfers every tensor into the row's backbone."""
    pretrain_config, options = PRETRAININGS[name]
    pre_cfg = Config.fromfile(osp.join(REPO, pretrain_config))
    if options:
        pre_cfg.merge_from_dict(parse_options(options))
    pre_bb = pre_cfg.model.backbone
    pre_bb.base_channels = TINY_WIDTH
    if pre_bb.norm_cfg.type == 'GN':
        pre_bb.norm_cfg.num_groups = 4
    pretrained = MODELS.build(pre_bb)
    # not the init values: random weights and BN statistics
    state = {
        k: torch.randn_like(v) if v.is_floating_point() else v + 3
        for k, v in pretrained.state_dict().items()
    }
    checkpoint = tmp_path / 'backbone.pth'
    torch.save({'state_dict': state}, checkpoint)

    row_bb = Config.fromfile(config_path(name)).model.backbone
    # the same norm type: BN3d (ImageNet) or GN (COCO)
    assert row_bb.norm_cfg.type == pre_bb.norm_cfg.type
    row_bb.base_channels = TINY_WIDTH
    if row_bb.norm_cfg.type == 'GN':
        row_bb.norm_cfg.num_groups = 4
    row_bb.init_cfg.checkpoint = str(checkpoint)
    finetune = MODELS.build(row_bb)
    finetune.init_weights()
    loaded = finetune.state_dict()
    assert sorted(loaded) == sorted(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    if row_bb.norm_eval:
        # frozen BN3d: running statistics and affine stay as loaded
        finetune.train()
        bns = [m for m in finetune.modules() if isinstance(m, _BatchNorm)]
        assert bns and not any(m.training for m in bns)
        assert not any(p.requires_grad for m in bns for p in m.parameters())


def test_nodepthmod_pretraining_has_ordinary_depth_strides():
    """The Table VII pre-training: the COCO config with the --cfg-options of
    the headers strides D like H and W, 3 -> 3, 2, 1, 1."""
    for arch, channels in (('r3d18', tiny_channels(R3D_CHANNELS)),
                           ('p3d63', tiny_channels(P3D_CHANNELS))):
        cfg = Config.fromfile(osp.join(REPO, COCO.format(arch)))
        cfg.merge_from_dict(parse_options(NODEPTHMOD))
        cfg.model.backbone.base_channels = TINY_WIDTH
        cfg.model.backbone.norm_cfg.num_groups = 4
        cfg.model.neck[0].in_channels = channels
        cfg.model.neck[0].norm_cfg.num_groups = 4
        backbone = MODELS.build(cfg.model.backbone).eval()
        gtm = MODELS.build(cfg.model.neck[0]).eval()
        with torch.no_grad():
            feats = backbone(torch.rand(1, 1, 3, 64, 96))
            outs = gtm(feats)
        assert [f.shape[2] for f in feats] == [3, 2, 1, 1]
        assert [o.shape for o in outs] == [
            torch.Size([1, c, 16 // 2**i, 24 // 2**i])
            for i, c in enumerate(channels)
        ]


@pytest.mark.parametrize('name,base,fraction', FRACTION_ROWS,
                         ids=[row[0] for row in FRACTION_ROWS])
def test_fraction_row_is_its_table_row_on_a_subset(name, base, fraction):
    cfg, base_cfg = (Config.fromfile(config_path(n)) for n in (name, base))
    assert 'Fig. 4' in config_header(config_path(name))
    assert cfg.train_dataloader.dataset == dict(
        type='FractionDataset',
        fraction=fraction,
        seed=0,
        dataset=base_cfg.train_dataloader.dataset)
    expected, actual = base_cfg.to_dict(), cfg.to_dict()
    for d in (expected, actual):
        d['train_dataloader'].pop('dataset')
        d.pop('filename', None)
    assert actual == expected


def _with_copies_of_the_train_image(ann_file, num_images):
    """The prepared train json with its one key slice listed
    ``num_images`` times (new image and annotation ids)."""
    import json
    with open(ann_file) as f:
        coco = json.load(f)
    (image, ), anns = coco['images'], coco['annotations']
    coco['images'] = [dict(image, id=i + 1) for i in range(num_images)]
    coco['annotations'] = [
        dict(ann, id=i * len(anns) + k + 1, image_id=i + 1)
        for i in range(num_images) for k, ann in enumerate(anns)
    ]
    with open(ann_file, 'w') as f:
        json.dump(coco, f)


def test_fraction_subsets_on_real_ct(mini_deeplesion):
    """The Fig. 4 rows' training sets, built by mmdet from the prepared
    DeepLesion json of real CT (its key slice listed 10 times): 2/4/6/8
    images, nested, and the same subsets for the three curves."""
    import copy

    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    ann_file = mini_deeplesion['root'] / 'annotations' / 'fig4_train.json'
    ann_file.write_text(
        (mini_deeplesion['root'] / 'annotations' /
         'deeplesion_train.json').read_text())
    _with_copies_of_the_train_image(str(ann_file), 10)
    subsets = {}
    for name, base, fraction in FRACTION_ROWS:
        dataset_cfg = copy.deepcopy(
            Config.fromfile(config_path(name)).train_dataloader.dataset)
        dataset_cfg.dataset.update(
            data_root=f"{mini_deeplesion['root']}{os.sep}",
            ann_file=str(ann_file))
        with DefaultScope.overwrite_default_scope('mmdet'):
            dataset = DATASETS.build(dataset_cfg)
        ids = {dataset.get_data_info(i)['img_id'] for i in range(len(dataset))}
        assert len(ids) == round(fraction * 10), name
        subsets[(base, fraction)] = ids
    fractions = sorted({f for _, _, f in FRACTION_ROWS})
    for base in {b for _, b, _ in FRACTION_ROWS}:
        for small, large in zip(fractions, fractions[1:]):
            assert subsets[(base, small)] < subsets[(base, large)]
        for fraction in fractions:  # one subset for every curve
            assert subsets[(base, fraction)] == subsets[(FRACTION_ROWS[0][1],
                                                         fraction)]


# --------------------------------------------------------------------------
# tiny end-to-end runs on a DeepLesion-layout mini set of real CT
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def mini_deeplesion(tmp_path_factory):
    """lung1 (train) and lung2 (test) as DeepLesion series, +-10 mm around
    the key slice, and the jsons of ``prepare_deeplesion.py``."""
    root = tmp_path_factory.mktemp('deeplesion')
    layout = build_deeplesion_layout_from_ct(str(root), context_mm=10.)
    proc = run_tool(cwd=REPO, args=[
        PREPARE, layout['dl_info'], root / 'annotations', '--images-root',
        layout['images_dir']
    ])
    assert 'train: 1 images, 1 lesions' in proc.stdout
    assert 'test : 1 images, 1 lesions' in proc.stdout
    return dict(root=root, layout=layout)


TINY_ROWS = {
    'r3d18': (name_of('r3d18', 'scratch'), R3D_CHANNELS),
    'p3d63': (name_of('p3d63', 'scratch'), P3D_CHANNELS),
}


@pytest.fixture(scope='module', params=sorted(TINY_ROWS))
def tiny_run(request, mini_deeplesion, tmp_path_factory):
    name, channels = TINY_ROWS[request.param]
    root = tmp_path_factory.mktemp(f'deeplesion_{request.param}')
    options = tiny_run_options(f"{mini_deeplesion['root']}{os.sep}",
                               channels)
    work_dir = root / 'work'
    run_tool(cwd=REPO, args=[
        TRAIN,
        config_path(name), '--work-dir', work_dir, '--cfg-options', *options
    ])
    return dict(
        arch=request.param,
        name=name,
        root=root,
        options=options,
        work_dir=work_dir,
        ckpt=work_dir / 'epoch_3.pth')


def test_tiny_training_losses_are_finite(tiny_run):
    records = [
        r for r in scalar_records(tiny_run['work_dir']) if 'loss' in r
    ]
    # 1 training volume, batch 1, 3 epochs
    assert [(r['epoch'], r['iter']) for r in records] == [(1, 1), (2, 2),
                                                          (3, 3)]
    for record in records:
        for key in LOSS_KEYS:
            assert math.isfinite(record[key]), (key, record)
        assert record['loss'] == pytest.approx(
            sum(record[key] for key in LOSS_KEYS), rel=1e-3)
    # the lesion box reached the RPN targets: positive anchors regress
    assert any(r['loss_rpn_bbox'] > 0 for r in records)
    state_dict = torch.load(
        tiny_run['ckpt'], map_location='cpu', weights_only=True)['state_dict']
    # one class + background, fc of 32
    assert state_dict['roi_head.bbox_head.fc_cls.weight'].shape == \
        torch.Size([2, 32])
    # the GTM of level 0 fuses 9 slices per channel (group conv, 1x1)
    assert state_dict['neck.0.convs.0.weight'].shape == torch.Size(
        [tiny_channels(TINY_ROWS[tiny_run['arch']][1])[0], 9, 1, 1])


def test_tiny_test_tool_reports_froc_and_plots(tiny_run):
    out = tiny_run['root'] / 'metrics.json'
    plot_dir = tiny_run['root'] / 'froc'
    run_tool(cwd=REPO, args=[
        TEST,
        config_path(tiny_run['name']), tiny_run['ckpt'], '--work-dir',
        tiny_run['root'] / 'test', '--out', out, '--cfg-options',
        *tiny_run['options'], f'test_evaluator.plot_dir={plot_dir}'
    ])
    metrics = json.loads(out.read_text())
    assert sorted(metrics) == sorted(('froc/mFROC', ) + FROC_KEYS)
    for key in ('froc/mFROC', ) + FROC_KEYS:
        assert isinstance(metrics[key], float)
        assert 0. <= metrics[key] <= 1., key
    # a sensitivity curve is non-decreasing in the FP rate
    sens = [metrics[k] for k in FROC_KEYS]
    assert sens == sorted(sens)
    assert metrics['froc/mFROC'] == pytest.approx(sum(sens) / 4)

    png = cv2.imread(str(plot_dir / 'froc_curve.png'), cv2.IMREAD_COLOR)
    assert png is not None and png.ndim == 3 and min(png.shape[:2]) > 100
    curve = json.loads((plot_dir / 'froc_curve.json').read_text())
    # the test split of the mini set: lung2, one key slice with one lesion
    assert (curve['num_images'], curve['num_lesions']) == (1, 1)
    assert curve['sensitivities'] == pytest.approx(sens)
    fps, curve_sens = curve['fps_per_image'], curve['sensitivity']
    assert fps == sorted(fps) and fps[0] == 0.
    # no score threshold: the curve reaches 4 FPs per image
    assert fps[-1] >= 4.
    assert all(0. <= v <= 1. for v in curve_sens)
