"""Issue: Baselines and experiment tooling (the configs).

- Every config file under ``configs/`` parses with ``Config.fromfile``.
- Every baseline row (Med3D, Kinetics, I3D, ACS, Models Genesis on LIDC-IDRI
  classification and segmentation, LiTS and DeepLesion) builds its model at
  a tiny width in its toolbox's scope and loads, through its ``init_cfg``,
  a checkpoint that ``tools/model_converters/convert_baseline.py`` made
  from a synthetic checkpoint in the documented public layout
  (``tests/test_models/test_utils/baseline_layouts.py``): the backbone
  arguments that the converter reads from the weights are those of the row,
  every converted tensor is loaded exactly, and tensors traced back to the
  public checkpoint are equal. The baseline backbones give the feature
  shapes of the scratch rows of their task.
- The Fig. 4 data-fraction rows differ from their Table IV row only in the
  ``FractionDataset`` wrapper; on the LIDC-layout mini set cut from real
  chest CTs their subsets are nested and class-stratified.
- Every checkpoint follows ``checkpoints/<backbone>-<init>_<part>.pth`` and
  ``configs/README.md`` lists every config file and every checkpoint.
"""
import copy
import functools
import logging
import os
import os.path as osp
import re
from collections import Counter

import mmdet  # noqa: F401
import mmpretrain  # noqa: F401
import mmseg  # noqa: F401
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import svd_mm  # noqa: F401  (registers the svd_mm modules)
from tests.helpers.tools import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
README = osp.join(CONFIGS, 'README.md')


tool = load_script(
    osp.join(REPO, 'tools', 'model_converters', 'convert_baseline.py'))
layouts = load_script(
    osp.join(REPO, 'tests', 'test_models', 'test_utils',
             'baseline_layouts.py'))

ALL_CONFIGS = sorted(
    osp.relpath(osp.join(root, f), CONFIGS)
    for root, _, files in os.walk(CONFIGS) for f in files
    if f.endswith('.py'))

# width of the tiny ResNet3D-18 and Models Genesis U-Net
WIDTH = 8
GENESIS_WIDTH = 4

LIDC_CLS = 'lidc/cls/cls3d_r3d18-{}_gap-linear_4xb32-100e_lidc-cls-48.py'
LIDC_SEG = 'lidc/seg/fcn3d_r3d18-{}_4xb4-100e_lidc-seg-48.py'
LITS = 'lits/unet3d_r3d18-{}_8xb2-500e_lits-32x256x256.py'
DEEPLESION = 'deeplesion/faster-rcnn_r3d18-{}_gtm-fpn_8xb2-24e_deeplesion.py'
GENESIS_LIDC = 'lidc/seg/unet3d_genesis_4xb4-100e_lidc-seg-48.py'
GENESIS_LITS = 'lits/unet3d_genesis_8xb2-500e_lits-32x256x256.py'

# [--type of convert_baseline.py, init switch file, checkpoint of the rows]
INITS = {
    'med3d': ('med3d_r3d18.py', 'checkpoints/r3d18-med3d_backbone.pth'),
    'kinetics':
    ('kinetics_r3d18.py', 'checkpoints/r3d18-kinetics_backbone.pth'),
    'i3d':
    ('i3d-in1k_r3d18.py', 'checkpoints/r3d18-i3d-in1k_backbone.pth'),
    'acs':
    ('acs-in1k_r3d18.py', 'checkpoints/r3d18-acs-in1k_backbone.pth'),
}
# init field of the config names: LIDC / LiTS, DeepLesion
NAME_FIELDS = {
    'med3d': ('med3d', 'med3d'),
    'kinetics': ('kinetics', 'kinetics'),
    'i3d': ('i3d-in1k', 'i3d-in1k'),
    'acs': ('acs-in1k', 'acs-in1k'),
}
# [task, scope, scratch row, input (D, H, W), backbone outputs (C, D, H, W)
#  at width 8]. cls: stem and max-pool stride 2, stages (1, 2, 2, 2) on
# every axis; seg: stem stride 1, no max-pool, stages (1, 2, 1, 2); lits:
# the full-resolution stem output, then max-pool and stages (1, 2, 2, 2);
# deeplesion: stem and max-pool stride 2 in H, W only, D strides
# (1, 2, 2, 3): 9 slices -> 9, 5, 3, 1.
TASKS = {
    'lidc-cls': ('mmpretrain', LIDC_CLS.format('scratch'), (16, 32, 48),
                 [(64, 1, 1, 2)]),
    'lidc-seg': ('mmseg', LIDC_SEG.format('scratch'), (12, 16, 20),
                 [(64, 3, 4, 5)]),
    'lits': ('mmseg', LITS.format('scratch'), (16, 32, 48),
             [(8, 16, 32, 48), (8, 8, 16, 24), (16, 4, 8, 12),
              (32, 2, 4, 6), (64, 1, 2, 3)]),
    'deeplesion': ('mmdet', DEEPLESION.format('scratch'), (9, 64, 96),
                   [(8, 9, 16, 24), (16, 5, 8, 12), (32, 3, 4, 6),
                    (64, 1, 2, 3)]),
}
_TEMPLATES = {
    'lidc-cls': (LIDC_CLS, 0),
    'lidc-seg': (LIDC_SEG, 0),
    'lits': (LITS, 0),
    'deeplesion': (DEEPLESION, 1),
}
# [config, task, --type]: every ResNet3D-18 baseline row
RESNET_ROWS = [(template.format(NAME_FIELDS[kind][field]), task, kind)
               for task, (template, field) in _TEMPLATES.items()
               for kind in INITS]
GENESIS_ROWS = [(GENESIS_LIDC, 'lidc-seg'), (GENESIS_LITS, 'lits')]
GENESIS_CKPT = 'checkpoints/unet3d-genesis_model.pth'
FROZEN_BN = dict(type='BN3d', requires_grad=False)
TRAINED_BN = dict(type='BN3d', requires_grad=True)

# Fig. 4: [fraction row, Table IV row]
FRACTION_ROWS = [(LIDC_CLS.format(init)[:-3] + f'-{pct}pct.py',
                  LIDC_CLS.format(init), pct / 100)
                 for init in ('scratch', 'svd-in1k')
                 for pct in (20, 40, 60, 80)]


@functools.lru_cache(maxsize=None)
def load_config(name):
    return Config.fromfile(osp.join(CONFIGS, name))


def _registry(scope):
    """The model registry of a toolbox, with its modules registered."""
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    else:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS


def build_model(model_cfg, scope):
    models = _registry(scope)
    with DefaultScope.overwrite_default_scope(scope):
        return models.build(model_cfg)


def tiny_model_cfg(name, task, checkpoint=None):
    """``model`` of a row config at a tiny width, loading ``checkpoint``."""
    model = copy.deepcopy(load_config(name).model)
    if model.type == 'UNet3DGenesis':
        model.base_channels = GENESIS_WIDTH
        if checkpoint is not None:
            model.init_cfg.checkpoint = checkpoint
        return model
    backbone = model.backbone
    backbone.base_channels = WIDTH
    if backbone.norm_cfg.type == 'GN':
        backbone.norm_cfg.num_groups = 4
    if checkpoint is not None:
        backbone.init_cfg.checkpoint = checkpoint
    if task == 'lidc-cls':
        model.head.in_channels = WIDTH * 8
    elif task == 'lidc-seg':
        model.decode_head.in_channels = WIDTH * 8
        model.decode_head.channels = 8
    elif task == 'lits':
        model.decode_head.in_channels = tuple(WIDTH * m
                                              for m in (1, 1, 2, 4, 8))
        model.decode_head.channels = WIDTH
    else:
        channels = [WIDTH * m for m in (1, 2, 4, 8)]
        gtm, fpn = model.neck
        gtm.in_channels = channels
        gtm.norm_cfg.num_groups = 4
        fpn.in_channels = channels
        fpn.out_channels = 16
        model.rpn_head.in_channels = 16
        model.rpn_head.feat_channels = 16
        model.roi_head.bbox_roi_extractor.out_channels = 16
        model.roi_head.bbox_head.in_channels = 16
        model.roi_head.bbox_head.fc_out_channels = 32
    return model


def _torchvision_resnet18(width, seed):
    """A torchvision ``resnet18`` state dict (a bare dict, 1000-class fc)
    at another width."""
    state = layouts.resnet_layout(
        18, dims=2, in_channels=3, width=width, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    state['fc.weight'] = torch.randn(1000, width * 8, generator=gen)
    state['fc.bias'] = torch.randn(1000, generator=gen)
    return state


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """{type: (public state dict without 'module.', converted file, its
    meta)}: synthetic public checkpoints run through convert_baseline.py."""
    root = tmp_path_factory.mktemp('baselines')
    public = {
        # resnet_18_23dataset.pth: 'module.', shortcut A, conv_seg
        'med3d': layouts.med3d_checkpoint(18, width=WIDTH),
        # r3d18_K_200ep.pth: RGB stem, shortcut B, fc of 700 classes
        'kinetics': layouts.kinetics_checkpoint(18, width=WIDTH),
        # torchvision resnet18 files for I3D and ACS
        'i3d': _torchvision_resnet18(WIDTH, seed=1),
        'acs': _torchvision_resnet18(WIDTH, seed=2),
        # Genesis_Chest_CT.pt: 'module.' + optimizer state
        'genesis': layouts.genesis_checkpoint(base=GENESIS_WIDTH),
    }
    out = {}
    for kind, ckpt in public.items():
        src = root / f'{kind}_public.pth'
        torch.save(ckpt, src)
        dst = root / f'{kind}_converted.pth'
        tool.main(['--type', kind, str(src), str(dst)])
        saved = torch.load(dst, weights_only=True)
        state = ckpt.get('state_dict', ckpt)
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        out[kind] = (state, str(dst), saved)
    return out


# --------------------------------------------------------------------------
# every config
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_every_config_parses(name):
    cfg = load_config(name)
    if name.startswith(('_base_', 'demo')):
        return
    # a runnable config: its toolbox and svd_mm
    assert cfg.default_scope in ('mmpretrain', 'mmseg', 'mmdet')
    assert 'svd_mm' in cfg.custom_imports.imports
    assert 'model' in cfg and 'train_dataloader' in cfg


def _checkpoints(obj):
    """The ``checkpoint`` values of the ``init_cfg`` dicts in a config."""
    found = []
    if isinstance(obj, dict):
        init_cfg = obj.get('init_cfg')
        if isinstance(init_cfg, dict) and 'checkpoint' in init_cfg:
            found.append(init_cfg['checkpoint'])
        for value in obj.values():
            found += _checkpoints(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found += _checkpoints(value)
    return found


def test_checkpoint_names_and_readme():
    readme = open(README).read()
    # the README lists every config file, by its path under configs/
    missing = [name for name in ALL_CONFIGS if f'`{name}`' not in readme]
    assert not missing, f'configs/README.md does not list {missing}'
    checkpoints = set()
    for name in ALL_CONFIGS:
        checkpoints.update(_checkpoints(load_config(name).to_dict()))
    # one scheme: checkpoints/<backbone>-<init>_<backbone|model>.pth
    scheme = re.compile(
        r'checkpoints/[a-z0-9]+-[a-z0-9]+(-[a-z0-9]+)*_(backbone|model)\.pth')
    assert all(scheme.fullmatch(c) for c in checkpoints), checkpoints
    assert {
        'checkpoints/r3d18-svd-in1k_backbone.pth',
        'checkpoints/r3d18-med3d_backbone.pth', GENESIS_CKPT
    } <= checkpoints
    for checkpoint in checkpoints:
        assert checkpoint in readme, checkpoint


# --------------------------------------------------------------------------
# the ResNet3D-18 baseline rows
# --------------------------------------------------------------------------
def _init_switch(kind):
    init_file, _ = INITS[kind]
    return Config.fromfile(osp.join(CONFIGS, '_base_', 'inits',
                                    init_file)).backbone_init


@pytest.mark.parametrize('name,task,kind', RESNET_ROWS,
                         ids=[row[0] for row in RESNET_ROWS])
def test_resnet_row_config(name, task, kind):
    scope, scratch, _, _ = TASKS[task]
    cfg, scratch_cfg = load_config(name), load_config(scratch)
    assert cfg.default_scope == scope
    backbone = cfg.model.backbone
    _, checkpoint = INITS[kind]
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=checkpoint)
    switch = _init_switch(kind)
    assert switch.init_cfg.checkpoint == checkpoint
    if task == 'deeplesion':
        # BN statistics in the weights: frozen BN3d, as the ImageNet row
        assert backbone.norm_cfg == FROZEN_BN and backbone.norm_eval
        assert switch.norm_cfg == TRAINED_BN
        switch.pop('norm_cfg')
    for key, value in switch.items():
        assert backbone[key] == value, key
    # the row and its scratch row differ only in the backbone
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg'):
        assert cfg[key] == scratch_cfg[key], key
    model, scratch_model = cfg.model.copy(), scratch_cfg.model.copy()
    model.pop('backbone')
    scratch_model.pop('backbone')
    assert model == scratch_model


@pytest.mark.parametrize('name,task,kind', RESNET_ROWS,
                         ids=[row[0] for row in RESNET_ROWS])
def test_resnet_row_loads_converted_checkpoint(name, task, kind, converted):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    public, dst, saved = converted[kind]
    model_cfg = tiny_model_cfg(name, task, checkpoint=dst)
    # what the weights need is what the row sets
    defaults = dict(shortcut_type='B', conv_cfg=dict(type='Conv3d'))
    for key, value in saved['meta']['model'].items():
        expected = WIDTH if key == 'base_channels' else model_cfg.backbone.get(
            key, defaults.get(key))
        assert value == expected, key
    scope = TASKS[task][0]
    model = build_model(model_cfg, scope)
    model.init_weights()
    state = model.backbone.state_dict()
    assert sorted(state) == sorted(saved['state_dict'])
    for key, value in saved['state_dict'].items():
        assert torch.equal(state[key], value), key
    # a couple of tensors traced back to the public checkpoint
    weight = public['layer3.0.conv1.weight']
    if kind == 'i3d':
        weight = weight.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3
    assert torch.equal(state['layer3.0.conv1.conv.weight'], weight)
    assert torch.equal(state['layer2.1.conv2.bn.running_var'],
                       public['layer2.1.bn2.running_var'])
    if kind == 'med3d':
        # shortcut A: no downsample parameters
        assert not any('downsample' in k for k in state)
    else:
        weight = public['layer2.0.downsample.0.weight']
        if kind == 'i3d':
            weight = weight.unsqueeze(2)
        assert torch.equal(state['layer2.0.downsample.conv.weight'], weight)
    if task == 'deeplesion':
        assert not any(
            p.requires_grad for n, p in model.backbone.named_parameters()
            if '.bn.' in n)


@pytest.mark.parametrize(
    'name,task',
    [(row[0], row[1]) for row in RESNET_ROWS] +
    [(scratch, task) for task, (_, scratch, _, _) in TASKS.items()],
    ids=[row[0] for row in RESNET_ROWS] + [t[1] for t in TASKS.values()])
def test_backbone_shapes_are_those_of_the_task(name, task):
    scope, _, size, shapes = TASKS[task]
    model_cfg = tiny_model_cfg(name, task)
    backbone_cfg = model_cfg.backbone
    backbone_cfg.init_cfg = None
    backbone = build_model(backbone_cfg, scope).eval()
    with torch.no_grad():
        outs = backbone(torch.rand(1, 1, *size))
    assert [o.shape for o in outs] == [torch.Size((1, ) + s) for s in shapes]


# --------------------------------------------------------------------------
# the Models Genesis rows
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name,task', GENESIS_ROWS)
def test_genesis_row_config(name, task):
    cfg = load_config(name)
    assert cfg.default_scope == 'mmseg'
    model = cfg.model
    assert model.type == 'UNet3DGenesis'
    assert (model.num_classes, model.out_channels) == (2, 1)
    assert model.threshold == 0.5
    assert model.init_cfg == dict(type='Pretrained', checkpoint=GENESIS_CKPT)
    losses = model.loss_decode
    assert losses[0] == dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
    assert losses[1].type == 'DiceLoss3D'
    preprocessor = model.data_preprocessor
    # the stored uint8 voxels v -> Models Genesis' (HU + 1000) / 2000
    if task == 'lidc-seg':
        hu = {0: -1024., 255: 400.}  # the ACS release: [-1024, 400] HU
        crop = load_config(name).train_dataloader.dataset.pipeline[1]
        assert crop.crop_size % 8 == 0
        assert model.test_cfg.mode == 'whole'
    else:
        hu = {0: -200., 255: 250.}  # prepare_lits.py: [-200, 250] HU
        assert all(c % 8 == 0 for c in model.test_cfg.crop_size)
        assert model.test_cfg.keep_largest_component
        assert preprocessor.pad_value == pytest.approx(
            (hu[0] + 1000) / 2000)
    for v, value in hu.items():
        assert (v - preprocessor.mean[0]) / preprocessor.std[0] == \
            pytest.approx((value + 1000) / 2000)


@pytest.mark.parametrize('name,task', GENESIS_ROWS)
def test_genesis_row_loads_converted_checkpoint(name, task, converted):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    public, dst, saved = converted['genesis']
    model_cfg = tiny_model_cfg(name, task, checkpoint=dst)
    assert saved['meta']['model'] == dict(
        in_channels=model_cfg.in_channels,
        base_channels=GENESIS_WIDTH,
        out_channels=model_cfg.out_channels)
    model = build_model(model_cfg, 'mmseg')
    model.init_weights()
    state = model.state_dict()
    for key, value in saved['state_dict'].items():
        assert torch.equal(state[key], value), key
    # Models Genesis' (x, y, z) kernels -> (z, y, x)
    assert torch.equal(
        state['backbone.down_tr128.ops.0.conv1.weight'],
        public['down_tr128.ops.0.conv1.weight'].permute(0, 1, 4, 3, 2))
    assert torch.equal(state['backbone.up_tr64.ops.1.bn1.running_mean'],
                       public['up_tr64.ops.1.bn1.running_mean'])
    assert torch.equal(state['decode_head.conv_seg.bias'],
                       public['out_tr.final_conv.bias'])
    with torch.no_grad():
        logits = model.eval()(torch.rand(1, 1, 8, 16, 24), mode='tensor')
    assert logits.shape == torch.Size((1, 1, 8, 16, 24))


# --------------------------------------------------------------------------
# Fig. 4: data fractions
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name,base,fraction', FRACTION_ROWS,
                         ids=[row[0] for row in FRACTION_ROWS])
def test_fraction_row_is_its_table_row_on_a_subset(name, base, fraction):
    cfg, base_cfg = load_config(name), load_config(base)
    dataset = cfg.train_dataloader.dataset
    assert dataset == dict(
        type='FractionDataset',
        fraction=fraction,
        seed=0,
        stratify_key='gt_label',
        dataset=base_cfg.train_dataloader.dataset)
    expected, actual = base_cfg.to_dict(), cfg.to_dict()
    expected['train_dataloader'].pop('dataset')
    actual['train_dataloader'].pop('dataset')
    expected.pop('filename', None)
    actual.pop('filename', None)
    assert actual == expected


def test_fraction_subsets_on_real_ct(tmp_path):
    """The fraction rows' training sets on the LIDC-layout mini set (6
    malignant and 6 benign training crops of real chest CTs)."""
    import nrrd  # noqa: F401; reads the pyradiomics CTs
    from mmpretrain.registry import DATASETS

    from tests.helpers.lidc_layout import build_lidc_layout_from_ct
    _registry('mmpretrain')
    info = build_lidc_layout_from_ct(str(tmp_path / 'lidc'), size=48)
    subsets = {}
    for name, base, fraction in FRACTION_ROWS:
        dataset_cfg = copy.deepcopy(load_config(name).train_dataloader.dataset)
        dataset_cfg.dataset.data_root = info['data_root']
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            dataset = DATASETS.build(dataset_cfg)
        paths = [dataset.get_data_info(i)['img_path']
                 for i in range(len(dataset))]
        labels = Counter(
            int(dataset.get_data_info(i)['gt_label'])
            for i in range(len(dataset)))
        # round(fraction * 6) of each class
        kept = int(fraction * 6 + 0.5)
        assert labels == {0: kept, 1: kept}, name
        subsets[(base, fraction)] = set(paths)
    for base in {row[1] for row in FRACTION_ROWS}:
        fractions = sorted(f for b, f in subsets if b == base)
        for small, large in zip(fractions, fractions[1:]):
            assert subsets[(base, small)] < subsets[(base, large)]
    # the curves of Fig. 4 share their training subsets
    for (base, fraction), paths in subsets.items():
        assert paths == subsets[(FRACTION_ROWS[0][1], fraction)]


# --------------------------------------------------------------------------
# ACS scratch (Tables III and IV): ACS convolutions, random init
# --------------------------------------------------------------------------
ACS_SCRATCH_ROWS = [(LIDC_CLS.format('acs-scratch'), 'lidc-cls'),
                    (LIDC_SEG.format('acs-scratch'), 'lidc-seg')]


@pytest.mark.parametrize('name,task', ACS_SCRATCH_ROWS,
                         ids=[row[0] for row in ACS_SCRATCH_ROWS])
def test_acs_scratch_row_is_the_acs_row_without_weights(name, task):
    scope, scratch, in_shape, out_shapes = TASKS[task]
    cfg = load_config(name).to_dict()
    acs = load_config(name.replace('acs-scratch', 'acs-in1k')).to_dict()
    assert cfg['model']['backbone']['init_cfg'] is None
    assert acs['model']['backbone']['init_cfg']['type'] == 'Pretrained'
    assert cfg['model']['backbone']['conv_cfg'] == dict(type='ACSConv')
    # the same network and recipe as the ACS (ImageNet) row
    for d in (cfg, acs):
        d.pop('filename', None)
        d['model']['backbone'].pop('init_cfg')
        d['backbone_init'].pop('init_cfg')
    assert cfg == acs
    model = build_model(tiny_model_cfg(name, task), scope)
    model.init_weights()
    convs = [m for m in model.backbone.modules() if type(m).__name__ ==
             'ACSConv3d']
    assert len(convs) == 20  # every 3x3x3 and 1x1x1 conv of ResNet3D-18
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 1, *in_shape))
    assert [tuple(f.shape[1:]) for f in feats] == out_shapes
