"""Issue: LiTS liver segmentation, 3D U-Net on ResNet3D-18 (Table V).

The three configs of ``configs/lits`` (Scratch, Ours, Ours Fix-Res1) are
checked as configs and as built models. Then the real Scratch config, shrunk
to width 4 and 8x64x64 windows, runs on LiTS-named real chest CTs prepared
by ``tools/dataset_converters/prepare_lits.py``: sliding-window inference
(constant and Gaussian blending) with the largest connected component, the
pre-trained init and the frozen stages of the other rows, and a tiny
training through ``tools/train.py`` and ``tools/test.py`` whose test
predictions are written as NIfTI on the original grid.
"""
import copy
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from scipy import ndimage

import svd_mm  # noqa: F401  (registers the svd_mm modules)
import svd_mm.engine  # noqa: F401
from svd_mm.datasets import LiTSDataset
from tests.helpers import check_norm_state, tools
from tests.helpers.tools import load_script
from tests.helpers.lits_layout import build_lits_layout_from_ct
from svd_mm.utils.volume_io import read_nifti

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'lits')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
PREPARE = osp.join(REPO, 'tools', 'dataset_converters', 'prepare_lits.py')
prepare = load_script(PREPARE)

SCRATCH = 'unet3d_r3d18-scratch_8xb2-500e_lits-32x256x256.py'
OURS = 'unet3d_r3d18-svd-in1k_8xb2-500e_lits-32x256x256.py'
FIX_RES1 = 'unet3d_r3d18-svd-in1k-fix-res1_8xb2-500e_lits-32x256x256.py'
# [config, Table V row, init switch of configs/_base_/inits, frozen_stages]
CONFIG_TABLE = [
    (SCRATCH, 'row "Scratch"', 'scratch.py', -1),
    (OURS, 'row "Ours"', 'svd-in1k_r3d18.py', -1),
    (FIX_RES1, 'row "Ours Fix-Res1"', 'svd-in1k_r3d18.py', 1),
]
WIDTH = 4
WINDOW = (8, 64, 64)
STRIDE = (4, 32, 32)


def _config(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def shrink(cfg, data_root, work_dir=None, max_epochs=2):
    """The real config at width 4 with 8x64x64 windows on ``data_root``."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.base_channels = WIDTH
    cfg.model.decode_head.in_channels = tuple(WIDTH * m
                                              for m in (1, 1, 2, 4, 8))
    cfg.model.decode_head.channels = WIDTH
    cfg.model.test_cfg.crop_size = WINDOW
    cfg.model.test_cfg.stride = STRIDE
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == [
        'LoadVolumeNifti', 'RandomCrop3D', 'RandomRescale3D', 'RandomCrop3D',
        'RandomFlip3D', 'PackSegVolumeInputs'
    ]
    pipeline[1].crop_size = (8, 80, 80)
    pipeline[3].crop_size = WINDOW
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].num_workers = 0
        cfg[name].persistent_workers = False
        cfg[name].dataset.data_root = data_root
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs
    cfg.param_scheduler[0].end = max_epochs
    cfg.default_hooks.checkpoint.interval = max_epochs
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg.cudnn_benchmark = False
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=0)
    if work_dir is not None:
        cfg.work_dir = work_dir
    return cfg


@pytest.fixture(scope='module')
def lits(tmp_path_factory):
    """Four raw LiTS-named cases from real CT, prepared (2/1/1 split)."""
    raw = tmp_path_factory.mktemp('raw')
    cases = build_lits_layout_from_ct(str(raw))['cases']
    out = tmp_path_factory.mktemp('prepared')
    split = prepare.main([str(raw), str(out)])
    return dict(raw=str(raw), prepared=str(out), cases=cases, split=split)


@pytest.mark.parametrize('name, row, init, frozen', CONFIG_TABLE)
def test_configs(name, row, init, frozen):
    cfg = _config(name)
    header = open(osp.join(CONFIG_DIR, name)).read().split('\n_base_')[0]
    assert 'SVD-Net Table V' in header and row in header
    # the paper's number, see test_metafiles
    assert '# Paper: Table V' in header
    assert 'svd_mm' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmseg'
    backbone = cfg.model.backbone
    assert backbone.type == 'ResNet3D' and backbone.depth == 18
    assert backbone.stem_stride == 1 and backbone.with_stem_out
    assert backbone.out_indices == (0, 1, 2, 3)
    assert backbone.frozen_stages == frozen
    # the row's init switch, and only that, sets the backbone's init
    switch = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'inits', init)).backbone_init
    assert backbone.get('init_cfg') == switch['init_cfg']
    if init == 'scratch.py':
        assert switch['init_cfg'] is None
    else:
        assert switch['init_cfg']['type'] == 'Pretrained'
        assert switch['init_cfg']['checkpoint'].startswith('checkpoints/r3d18')
    head = cfg.model.decode_head
    assert head.type == 'UNetHead3D'
    assert head.in_channels == (64, 64, 128, 256, 512)
    assert [(loss.type, loss.loss_weight) for loss in head.loss_decode] == [
        ('CrossEntropyLoss', 1.0), ('DiceLoss3D', 0.5)
    ]
    assert cfg.model.test_cfg == dict(
        mode='slide',
        crop_size=(32, 256, 256),
        stride=(12, 128, 128),
        batch_windows=4,
        blend='constant',
        keep_largest_component=True)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    (poly, ) = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min) == ('PolyLR', 0.9, 1e-6)
    assert cfg.train_cfg.max_epochs == 500
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.pipeline[3].crop_size == (32, 256,
                                                                  256)
    assert cfg.val_evaluator.type == 'DiceMetric3D'
    assert cfg.test_dataloader.dataset.split == 'test'
    # config name fields: {algo}_{backbone}-{init}_{G}xb{B}-{sched}_{data}
    algo, model, schedule, data = name[:-3].split('_')
    assert algo == 'unet3d' and model.startswith('r3d18-')
    assert schedule == '8xb2-500e' and data == 'lits-32x256x256'


def test_full_size_model_shapes():
    """The real model: full-resolution stem, isotropic downsampling, U-Net
    logits at the input size (non-cubic input)."""
    init_default_scope('mmseg')
    model = MODELS.build(_config(SCRATCH).model)
    model.eval()
    x = torch.rand(1, 1, 8, 32, 48)
    with torch.no_grad():
        feats = model.backbone(x)
        logits = model.decode_head(feats)
    # stem at full size, then /2 along D, H and W per level
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 8, 32, 48),
        (1, 64, 4, 16, 24),
        (1, 128, 2, 8, 12),
        (1, 256, 1, 4, 6),
        (1, 512, 1, 2, 3),
    ]
    assert logits.shape == torch.Size([1, 2, 8, 32, 48])
    num_params = sum(p.numel() for p in model.parameters()) / 1e6
    assert 40 < num_params < 50, num_params


def _test_batch(dataset, index=0):
    return pseudo_collate([dataset[index]])


def _components(mask):
    return ndimage.label(mask, structure=np.ones((3, 3, 3)))[1]


def test_sliding_window_inference_real_ct(lits):
    """Sliding-window inference through the real (shrunk) config on a real
    CT: predictions at the volume size, Gaussian blending differs from the
    plain mean but stays close, and the largest connected component is one
    component contained in the raw prediction."""
    init_default_scope('mmseg')
    cfg = shrink(_config(SCRATCH), lits['prepared'])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg.pop('type')
    dataset = LiTSDataset(**dataset_cfg)
    data = _test_batch(dataset)
    shape = data['inputs'][0].shape[1:]
    outputs = {}
    for blend in ('constant', 'gaussian'):
        for lcc in (False, True):
            model.test_cfg = dict(cfg.model.test_cfg, blend=blend,
                                  keep_largest_component=lcc)
            with torch.no_grad():
                (sample, ) = model.test_step(copy.deepcopy(data))
            assert sample.pred_sem_seg.data.shape == torch.Size((1, ) +
                                                                shape)
            assert sample.seg_logits.data.shape == torch.Size((2, ) + shape)
            assert torch.isfinite(sample.seg_logits.data).all()
            assert sample.case_id == dataset.get_data_info(0)['case_id']
            outputs[blend, lcc] = sample
    for blend in ('constant', 'gaussian'):
        raw = outputs[blend, False].pred_sem_seg.data[0].numpy()
        kept = outputs[blend, True].pred_sem_seg.data[0].numpy()
        assert _components(raw) > 1  # an untrained net: scattered blobs
        assert _components(kept) == 1
        assert (kept <= raw).all() and kept.sum() > 0
    constant = outputs['constant', False].seg_logits.data
    gaussian = outputs['gaussian', False].seg_logits.data
    assert not torch.allclose(constant, gaussian)
    assert (constant - gaussian).abs().max() < 0.5 * constant.abs().max()


def test_sliding_window_equals_monai(lits):
    """svd_mm's slide inference and MONAI's sliding_window_inference give
    the same logits with the same windows and blending (see
    benchmarks/sliding_window.py for time and memory)."""
    from monai.inferers import sliding_window_inference
    init_default_scope('mmseg')
    cfg = shrink(_config(SCRATCH), lits['prepared'])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg.pop('type')
    data = model.data_preprocessor(
        _test_batch(LiTSDataset(**dataset_cfg)), False)
    inputs = data['inputs']
    metas = [dict(ori_shape=tuple(inputs.shape[2:]))]
    for blend in ('constant', 'gaussian'):
        model.test_cfg = dict(cfg.model.test_cfg, blend=blend)
        weight_map = None
        if blend == 'gaussian':  # svd_mm's map (MONAI's differs slightly)
            weight_map = model.gaussian_weight(WINDOW)[None, None]
        with torch.no_grad():
            ours = model.slide_inference(inputs, metas)
            theirs = sliding_window_inference(
                inputs,
                roi_size=WINDOW,
                sw_batch_size=4,
                predictor=lambda x: model.encode_decode(x, metas * len(x)),
                overlap=[1 - s / w for s, w in zip(STRIDE, WINDOW)],
                mode=blend,
                roi_weight_map=weight_map)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_pretrained_init_and_frozen_stages(lits, tmp_path):
    """Ours / Fix-Res1 load the extracted SVD backbone; Fix-Res1 freezes
    the stem and the first stage."""
    init_default_scope('mmseg')
    from mmengine.registry import MODELS as ROOT_MODELS

    # a VDT pre-training backbone of the same width (its own strides)
    pretrain = ROOT_MODELS.build(
        dict(type='ResNet3D', depth=18, base_channels=WIDTH))
    pretrain.init_weights()
    checkpoint = str(tmp_path / 'r3d18-svd-in1k_backbone.pth')
    torch.save(dict(state_dict=pretrain.state_dict()), checkpoint)
    for name, frozen in ((OURS, -1), (FIX_RES1, 1)):
        cfg = shrink(_config(name), lits['prepared'])
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
        model = MODELS.build(cfg.model)
        model.init_weights()
        for key, value in pretrain.state_dict().items():
            torch.testing.assert_close(
                model.backbone.state_dict()[key], value, msg=key)
        model.train()
        for layer in ('conv1', 'layer1', 'layer2'):
            module = getattr(model.backbone, layer)
            trainable = all(p.requires_grad for p in module.parameters())
            frozen_layer = layer == 'conv1' or layer == 'layer1'
            assert trainable != (frozen_layer and frozen == 1), (name, layer)
            if frozen == 1 and frozen_layer:
                assert check_norm_state(module.modules(), False)
        assert check_norm_state(model.decode_head.modules(), True)


def _run(args):
    return tools.run_tool(args, REPO)


def test_train_and_test_tools(lits, tmp_path):
    """tools/train.py then tools/test.py on the prepared real CTs: finite
    losses and Dice per case, predictions on the original grid."""
    work_dir = tmp_path / 'work'
    cfg = shrink(_config(SCRATCH), lits['prepared'], str(work_dir))
    config = str(tmp_path / 'lits_tiny.py')
    cfg.dump(config)
    _run([TRAIN, config])
    assert (work_dir / 'epoch_2.pth').is_file()
    records = tools.scalar_records(str(work_dir))
    losses = [r['loss'] for r in records if 'loss' in r]
    # 2 training volumes, batch 2: one iteration per epoch
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert {'decode.loss_ce', 'decode.loss_dice'} <= set(records[0])
    val = [r for r in records if 'dice_per_case' in r]
    assert len(val) == 1 and 0 <= val[0]['dice_per_case'] <= 1

    out = tmp_path / 'metrics.json'
    _run([
        TEST, config, work_dir / 'epoch_2.pth', '--work-dir',
        tmp_path / 'test', '--out', out, '--cfg-options',
        'custom_hooks.0.out_dir=predictions'
    ])
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'dice_per_case', 'dice_global'}
    assert all(0 <= v <= 1 and math.isfinite(v) for v in metrics.values())
    (case_id, ) = lits['split']['test']
    pred = read_nifti(
        str(tmp_path / 'test' / 'predictions' / f'{case_id}_pred.nii.gz'))
    raw_image = read_nifti(osp.join(lits['raw'], f'{case_id}.nii'))
    # the prediction overlays the raw volume
    assert pred.shape == raw_image.shape
    np.testing.assert_allclose(pred.affine, raw_image.affine)
    pred = pred.array
    assert pred.dtype == np.uint8 and set(np.unique(pred)) <= {0, 1}
    # (one component on the 1 mm grid may fall apart on the 5 mm slices of
    # the raw grid; the LCC is checked on the inference grid above)
