"""Issue: start from the released weights (SVD-Net ImageNet ResNet3D-18,
MP3D COCO P3D-63).

- Each "from the released weights" config is its task's "Ours" row with
  another checkpoint (and, for P3D-63, MP3D's backbone, which the weights
  need): nothing else differs. Its header names the file, where to get it,
  the convert command, and quotes the paper's number of the row it
  reproduces, as ``PAPER_TABLES.md`` prints it; its metafile entry exists.
- One tiny CPU iteration per config: a checkpoint laid out like the release
  (``tests.helpers.official_models``) is converted with
  ``tools/model_converters/convert_official.py``; the config's model, at a
  tiny width, loads it through its ``init_cfg`` (every converted tensor,
  exactly) and takes one training step on a batch of the task's mini
  dataset cut from real CT (the layouts of the other config tests).
"""
import copy
import math
import os
import os.path as osp
import re

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DATASETS, MODELS, DefaultScope

import svd_mm  # noqa: F401  (registers the svd_mm modules)
import svd_mm.engine  # noqa: F401
from tests.helpers.official_models import (mp3d_release_checkpoint,
                                           svd_release_checkpoint)
from tests.helpers.tools import config_header, load_script, run_tool
from tests.helpers.deeplesion_layout import build_deeplesion_layout_from_ct
from tests.helpers.lidc_layout import build_lidc_layout_from_ct
from tests.helpers.lits_layout import build_lits_layout_from_ct

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')


def _paper_tables():
    """``shared/PAPER_TABLES.md`` next to the checkout or a folder above
    it (``../shared`` of the project's checkouts)."""
    folder = REPO
    while True:
        path = osp.join(folder, 'shared', 'PAPER_TABLES.md')
        if osp.isfile(path) or osp.dirname(folder) == folder:
            return path
        folder = osp.dirname(folder)


PAPER_TABLES = _paper_tables()
convert_tool = load_script(
    osp.join(REPO, 'tools', 'model_converters', 'convert_official.py'),
    'convert_official')
lits_tests = load_script(
    osp.join(REPO, 'tests', 'test_configs', 'test_lits.py'), 'lits_tests')
deeplesion_tests = load_script(
    osp.join(REPO, 'tests', 'test_configs', 'test_deeplesion.py'),
    'deeplesion_tests')

R3D_URL = ('https://drive.google.com/file/d/1TlaGFA154RfunoLFzvP8SRjzVL8zGTOI'
           '/view?usp=share_link')
MP3D_URL = ('https://drive.google.com/file/d/1jKdJQ83vZrvOT4N_iZeRvhDuyKWiboqi'
            '/view?usp=sharing')
R3D_CKPT = 'checkpoints/r3d18-svd-release-in1k_backbone.pth'
MP3D_CKPT = 'checkpoints/p3d63-mp3d-release-coco_backbone.pth'
# [config, task, scope, "Ours" row it inherits, --kind, paper number as
#  quoted, the PAPER_TABLES.md line that holds it]
ROWS = [
    ('lidc/cls/cls3d_r3d18-svd-release-in1k_gap-linear_4xb32-100e_'
     'lidc-cls-48.py', 'lidc-cls', 'mmpretrain',
     'cls3d_r3d18-svd-in1k_gap-linear_4xb32-100e_lidc-cls-48.py',
     'svd-r3d18-in1k', 'AUC 94.84 ± 0.22', '| Ours (SVD, ImageNet) | '
     'ResNet3D-18 | 85.49 ± 0.98 | **94.84 ± 0.22**'),
    ('lidc/seg/fcn3d_r3d18-svd-release-in1k_4xb4-100e_lidc-seg-48.py',
     'lidc-seg', 'mmseg', 'fcn3d_r3d18-svd-in1k_4xb4-100e_lidc-seg-48.py',
     'svd-r3d18-in1k', 'Dice 75.95 ± 0.16',
     '| Ours (SVD, ImageNet) | ResNet3D-18 | **75.95 ± 0.16** |'),
    ('lits/unet3d_r3d18-svd-release-in1k_8xb2-500e_lits-32x256x256.py',
     'lits', 'mmseg', 'unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py',
     'svd-r3d18-in1k', 'Dice per case 96.07 ± 0.23',
     '| Ours (SVD, ImageNet) | ResNet3D-18 | **96.07 ± 0.23** |'),
    ('deeplesion/faster-rcnn_r3d18-svd-release-in1k_gtm-fpn_8xb2-24e_'
     'deeplesion.py', 'deeplesion', 'mmdet',
     'faster-rcnn_r3d18-svd-in1k_gtm-fpn_8xb2-24e_deeplesion.py',
     'svd-r3d18-in1k', 'mFROC 83.30',
     '| Ours (ImageNet) | ResNet3D-18 | 9 | 74.18 | 81.55 | 86.77 | 90.68 '
     '| 83.30 |'),
    ('deeplesion/faster-rcnn_p3d63-mp3d-release-coco_gtm-fpn_8xb2-24e_'
     'deeplesion.py', 'deeplesion', 'mmdet',
     'faster-rcnn_p3d63-svd-coco_gtm-fpn_8xb2-24e_deeplesion.py',
     'mp3d63-coco', 'mFROC 88.55',
     '| Ours (MS-COCO) | P3D-63 | 9 | 82.22 | 87.42 | 90.91 | 93.65 | '
     '**88.55** |'),
]
IDS = [osp.basename(row[0]) for row in ROWS]
WIDTH = 8  # of the tiny models (LiTS: width 4, as its tests)


def _load(name):
    return Config.fromfile(osp.join(CONFIGS, name))


@pytest.mark.parametrize('name,task,scope,parent,kind,number,line', ROWS,
                         ids=IDS)
def test_release_row_is_its_ours_row(name, task, scope, parent, kind, number,
                                     line):
    cfg = _load(name)
    base = _load(osp.join(osp.dirname(name), parent))
    assert cfg.default_scope == scope
    assert 'svd_mm' in cfg.custom_imports.imports
    checkpoint = R3D_CKPT if kind == 'svd-r3d18-in1k' else MP3D_CKPT
    backbone, base_backbone = cfg.model.backbone, base.model.backbone
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=checkpoint)
    assert base_backbone.init_cfg.type == 'Pretrained'
    expected = copy.deepcopy(base.to_dict())
    actual = copy.deepcopy(cfg.to_dict())
    for d in (expected, actual):
        d.pop('filename', None)
        d['model']['backbone'].pop('init_cfg')
    if kind == 'mp3d63-coco':
        # MP3D's backbone: its T convolutions of stage 4 and its D pools
        assert (backbone.arch, backbone.slice_pool_stages) == ('mp3d',
                                                               (0, 1, 2))
        assert cfg.model.neck[0].depths == [5, 3, 1, 1]
        assert base.model.neck[0].depths == [9, 5, 3, 1]
        actual['model']['backbone'].pop('arch')
        actual['model']['backbone']['slice_pool_stages'] = (1, 2, 3)
        actual['model']['neck'][0]['depths'] = [9, 5, 3, 1]
    assert actual == expected


@pytest.mark.parametrize('name,task,scope,parent,kind,number,line', ROWS,
                         ids=IDS)
def test_release_row_header(name, task, scope, parent, kind, number, line):
    header = ' '.join(config_header(osp.join(CONFIGS, name)).split())
    # the paper's number, as PAPER_TABLES.md prints it in the row's line
    with open(PAPER_TABLES, encoding='utf-8') as f:
        assert line in f.read()
    assert number in header
    assert 'the paper has no separate row for them' in header
    assert parent in header
    url = R3D_URL if kind == 'svd-r3d18-in1k' else MP3D_URL
    assert url in header
    checkpoint = R3D_CKPT if kind == 'svd-r3d18-in1k' else MP3D_CKPT
    assert ('python tools/model_converters/convert_official.py --kind '
            f'{kind}') in header
    assert checkpoint in header.split('convert_official.py')[1]


@pytest.mark.parametrize('name,task,scope,parent,kind,number,line', ROWS,
                         ids=IDS)
def test_release_row_metafile_entry(name, task, scope, parent, kind, number,
                                    line):
    folder = osp.dirname(name)
    with open(osp.join(CONFIGS, folder, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    stem = osp.basename(name)[:-3]
    entries = [m for m in meta['Models'] if m['Name'] == stem]
    assert len(entries) == 1
    entry = entries[0]
    assert entry['Config'] == f'configs/{name}'
    assert osp.isfile(osp.join(REPO, entry['Config']))
    init = 'svd-release-in1k' if kind == 'svd-r3d18-in1k' else \
        'mp3d-release-coco'
    assert entry['Metadata']['Init'] == init
    assert f'-{init}_' in stem
    metrics = entry['Results'][0]['Metrics']
    value = float(re.search(r'\d+\.\d+', number).group())
    assert value in metrics.values()
    collections = {c['Name'] for c in meta['Collections']}
    assert entry['In Collection'] in collections


# --------------------------------------------------------------------------
# one tiny CPU iteration from a converted release layout
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """{(kind, width): converted file} made by convert_official.py from
    checkpoints laid out as released."""
    root = tmp_path_factory.mktemp('release')
    out = {}
    for kind, width in (('svd-r3d18-in1k', WIDTH), ('svd-r3d18-in1k', 4),
                        ('mp3d63-coco', WIDTH)):
        if kind == 'svd-r3d18-in1k':
            ckpt = svd_release_checkpoint(width=width, norm='BN', seed=width)
        else:
            ckpt = mp3d_release_checkpoint(width=width)
        src = root / f'{kind}-w{width}.pth'
        torch.save(ckpt, src)
        dst = root / f'{kind}-w{width}_backbone.pth'
        convert_tool.main(
            ['--kind', kind, str(src), str(dst), '--num-groups', '4'])
        out[(kind, width)] = str(dst)
    return out


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    """The mini datasets of the tasks, cut from real CT."""
    lidc = build_lidc_layout_from_ct(
        str(tmp_path_factory.mktemp('lidc')), size=48)
    raw = tmp_path_factory.mktemp('lits_raw')
    build_lits_layout_from_ct(str(raw))
    lits = tmp_path_factory.mktemp('lits')
    lits_tests.prepare.main([str(raw), str(lits)])
    dl = tmp_path_factory.mktemp('deeplesion')
    layout = build_deeplesion_layout_from_ct(str(dl), context_mm=10.)
    run_tool(cwd=REPO, args=[
        deeplesion_tests.PREPARE, layout['dl_info'], dl / 'annotations',
        '--images-root', layout['images_dir']
    ])
    return {
        'lidc-cls': lidc['data_root'],
        'lidc-seg': lidc['data_root'],
        'lits': str(lits),
        'deeplesion': f'{dl}{os.sep}'
    }


def _tiny_config(name, task, data_root):
    """The config at a tiny width on the task's mini dataset."""
    cfg = _load(name)
    if task == 'lits':
        return lits_tests.shrink(cfg, data_root)
    if task == 'deeplesion':
        channels = [c * 4 if cfg.model.backbone.type == 'P3D' else c
                    for c in (64, 128, 256, 512)]
        cfg.merge_from_dict(
            deeplesion_tests.parse_options(
                deeplesion_tests.tiny_run_options(data_root, channels)))
        if cfg.model.backbone.norm_cfg.type != 'GN':
            cfg.model.backbone.norm_cfg = dict(
                type='BN3d', requires_grad=False)
        return cfg
    cfg.model.backbone.base_channels = WIDTH
    cfg.train_dataloader.dataset.data_root = data_root
    if task == 'lidc-cls':
        cfg.model.head.in_channels = WIDTH * 8
    else:
        cfg.model.decode_head.in_channels = WIDTH * 8
        cfg.model.decode_head.channels = 8
    return cfg


@pytest.mark.parametrize('name,task,scope,parent,kind,number,line', ROWS,
                         ids=IDS)
def test_release_row_trains_one_iteration(name, task, scope, parent, kind,
                                          number, line, converted,
                                          data_roots):
    MMLogger.get_current_instance().setLevel('WARNING')
    cfg = _tiny_config(name, task, data_roots[task])
    width = cfg.model.backbone.base_channels
    checkpoint = converted[(kind, width)]
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    model.init_weights()
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    state = model.backbone.state_dict()
    assert sorted(state) == sorted(saved)
    for key, value in saved.items():
        assert torch.equal(state[key], value), key
    model.train()
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    losses = model.train_step(pseudo_collate([dataset[0]]), optim_wrapper)
    total = sum(v.item() for k, v in losses.items() if 'loss' in k)
    assert math.isfinite(total) and total > 0, losses
    changed = [
        k for k, v in model.backbone.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert 'layer4.1.conv2.conv.weight' in changed or \
        'layer4.2.conv3.conv.weight' in changed, changed[:5]
