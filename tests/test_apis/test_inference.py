"""Inference on real CT in every input format, with tiny models."""
import csv
import json
import os
import shutil

import matplotlib.image as mpimg
import mmseg  # noqa: F401
import numpy as np
import pydicom
import pytest
import torch

from svd_mm.apis import build_volume_pipeline, inference_volume, init_model
from svd_mm.utils.medical_io import Volume, read_volume, write_volume
from tests.helpers.ct_crops import lesion_crop
from tests.helpers.data_cache import fetch_pyradiomics_ct

SEG_MODEL = """
model = dict(
    type='EncoderDecoder3D',
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor', mean=[128.], std=[64.]),
    backbone=dict(
        type='ResNet3D', depth=18, base_channels=4, num_stages=3,
        strides=(1, 2, 1), slice_strides=(1, 1, 1), dilations=(1, 1, 1),
        with_maxpool=False, out_indices=(2, )),
    decode_head=dict(
        type='FCNHead3D', in_channels=16, channels=8, num_classes=2,
        scale_factors=((1, 2, 2), (1, 2, 2)), dropout_ratio=0,
        loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='slide', crop_size=(8, 32, 32), stride=(6, 24, 24),
                  batch_windows=4))
"""

# a model fast enough for a whole 48 x 512 x 512 CT on the CPU
WHOLE_MODEL = """
model = dict(
    type='EncoderDecoder3D',
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor', mean=[128.], std=[64.]),
    backbone=dict(
        type='ResNet3D', depth=18, base_channels=2, num_stages=2,
        strides=(2, 2), slice_strides=(1, 2), dilations=(1, 1),
        stem_stride=2, with_maxpool=True, out_indices=(1, )),
    decode_head=dict(
        type='FCNHead3D', in_channels=4, channels=4, num_classes=2,
        scale_factors=((1, 2, 2), (2, 4, 4)), dropout_ratio=0,
        loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='whole'))
"""

SEG_CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
{model}
test_pipeline = [
    dict(type='LoadVolumeNifti',
         preprocess=dict(window=(-1000, 400), spacing_z=None)),
    dict(type='PackSegVolumeInputs'),
]
test_dataloader = dict(
    batch_size=1, dataset=dict(type='LiTSDataset', pipeline=test_pipeline))
""".replace('{model}', SEG_MODEL.strip())

DET_CONFIG = """
default_scope = 'mmdet'
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
model = dict(
    type='FasterRCNN',
    data_preprocessor=dict(
        type='VolumeDataPreprocessor', mean=[128.], std=[64.],
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet3D', depth=18, base_channels=4,
        slice_strides=(1, 2, 2, 3), out_indices=(0, 1, 2, 3)),
    neck=[
        dict(type='GTMNeck', in_channels=[4, 8, 16, 32], depths=[9, 5, 3, 1]),
        dict(type='FPN', in_channels=[4, 8, 16, 32], out_channels=8,
             num_outs=5)],
    rpn_head=dict(
        type='RPNHead', in_channels=8, feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', scales=[8],
                              ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                        target_stds=[1.] * 4),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss')),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=8, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16,
            roi_feat_size=7, num_classes=1,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                            target_means=[0.] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss'),
            loss_bbox=dict(type='L1Loss'))),
    train_cfg=None,
    test_cfg=dict(
        rpn=dict(nms_pre=100, max_per_img=50,
                 nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=4)))
test_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=9, slice_spacing=2.5,
         hu_window=(-1024, 1050)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='SlicesToVolume'),
    dict(type='PackDetVolumeInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
test_dataloader = dict(
    batch_size=1,
    dataset=dict(type='DeepLesionDataset', pipeline=test_pipeline))
"""


def _save_model(config, folder, name, meta=None):
    """A config file and a checkpoint of its randomly initialised model."""
    cfg_path = os.path.join(folder, f'{name}.py')
    with open(cfg_path, 'w') as f:
        f.write(config)
    torch.manual_seed(0)
    model = init_model(cfg_path, device='cpu')
    ckpt = os.path.join(folder, f'{name}.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=meta or {}), ckpt)
    return cfg_path, ckpt


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Real CT (lung1 around its lesion, 10 x 48 x 56) in NRRD, NIfTI,
    MetaImage; its lesion mask; a DICOM series of CT_small copies; the
    tiny models."""
    root = tmp_path_factory.mktemp('inference')
    crop, label = lesion_crop((10, 48, 56))
    files = {}
    for fmt, suffix in (('nrrd', '.nrrd'), ('nifti', '.nii.gz'),
                        ('mhd', '.mhd'), ('mha', '.mha')):
        files[fmt] = write_volume(
            crop, str(root / f'lung1_crop{suffix}'), dtype=np.int16)
    files['label'] = write_volume(
        label, str(root / 'lung1_label.nrrd'), dtype=np.uint8)
    files['dicom'] = _dicom_series(str(root / 'ct_small_series'), 5)
    seg_cfg, seg_ckpt = _save_model(
        SEG_CONFIG, str(root), 'tiny_seg',
        dict(dataset_meta=dict(classes=['background', 'lesion'])))
    return dict(
        root=root, files=files, seg=(seg_cfg, seg_ckpt), crop=crop,
        label=label.array)


def _dicom_series(folder, num, series_uid=None):
    """``num`` copies of pydicom's real CT_small.dcm, 5 mm apart."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid
    os.makedirs(folder, exist_ok=True)
    uid = series_uid or generate_uid()
    for k in range(num):
        ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1], ipp[2] + 5. * k]
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = uid
        ds.save_as(os.path.join(folder, f'{uid[-6:]}_{k:03d}.dcm'))
    return folder


@pytest.fixture(scope='module')
def seg_model(data):
    return init_model(*data['seg'], device='cpu')


def _read_result(out_dir, stem):
    with open(os.path.join(out_dir, f'{stem}_result.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('fmt', ['nrrd', 'nifti', 'mhd', 'mha'])
def test_segment_every_format(data, seg_model, tmp_path, fmt):
    path = data['files'][fmt]
    result = inference_volume(seg_model, None, path, out_dir=str(tmp_path))
    volume = read_volume(path)
    mask_file = result['files']['mask']
    assert mask_file == str(tmp_path / 'lung1_crop_seg.nii.gz')
    mask = read_volume(mask_file)
    # the mask is on the input's grid, whatever the input format
    assert mask.shape == volume.shape == (10, 48, 56)
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-5)
    np.testing.assert_array_equal(mask.array, result['mask'])
    assert set(np.unique(result['mask'])) <= {0, 1}
    # the same image gives the same mask in every format
    reference = inference_volume(seg_model, None, data['files']['nrrd'])
    np.testing.assert_array_equal(result['mask'], reference['mask'])
    summary = _read_result(str(tmp_path), 'lung1_crop')
    assert summary['format'] == ('mhd' if fmt == 'mha' else fmt)
    assert summary['shape_dhw'] == [10, 48, 56]
    assert summary['classes'] == ['background', 'lesion']
    assert summary['voxels'] == {'lesion': int(result['mask'].sum())}
    assert summary['preprocess'] == dict(window=[-1000, 400], spacing_z=None)
    voxel_ml = np.prod(volume.spacing) / 1000
    assert summary['volume_ml']['lesion'] == pytest.approx(
        result['mask'].sum() * voxel_ml)


def test_segment_uses_the_config_pipeline(data, seg_model):
    """What the model sees is the test pipeline's output on the volume."""
    from svd_mm.datasets.transforms.load_volume_nifti import LoadVolumeNifti
    loader, rest, info = build_volume_pipeline(seg_model.cfg)
    assert info['loader'] == 'LoadVolumeNifti'
    assert info['hu_window'] == (-1000, 400)
    packed = rest(loader(dict(volume=read_volume(data['files']['nrrd']))))
    ref = LoadVolumeNifti(preprocess=dict(window=(-1000, 400),
                                          spacing_z=None))(
                                              dict(img_path=data['files']
                                                   ['nifti']))
    assert packed['inputs'].shape == torch.Size([1, 10, 48, 56])
    np.testing.assert_array_equal(packed['inputs'].numpy(), ref['img'])


def test_segment_on_resampled_grid(data, tmp_path):
    """A model working on 2.5 mm slices: its mask is mapped back onto the
    5 mm input grid."""
    cfg, ckpt = data['seg']
    result = inference_volume(
        cfg,
        ckpt,
        data['files']['nifti'],
        out_dir=str(tmp_path),
        cfg_options={
            'test_dataloader.dataset.pipeline.0.preprocess.spacing_z': 2.5
        })
    summary = _read_result(str(tmp_path), 'lung1_crop')
    assert summary['model_grid_shape_dhw'] == [19, 48, 56]
    assert summary['model_grid_spacing_dhw_mm'][0] == pytest.approx(2.5)
    mask = read_volume(result['files']['mask'])
    assert mask.shape == (10, 48, 56)
    np.testing.assert_allclose(mask.affine, data['crop'].affine, atol=1e-5)


def test_segment_preprocess_from_dataset(data, tmp_path):
    """Raw-LiTS style: the dataset, not the loader, holds the
    preprocessing."""
    config = SEG_CONFIG.replace(
        "preprocess=dict(window=(-1000, 400), spacing_z=None)),",
        '),').replace(
            "dataset=dict(type='LiTSDataset', pipeline=test_pipeline))",
            "dataset=dict(type='LiTSDataset', pipeline=test_pipeline,\n"
            "                 preprocess=dict(window=(-200, 250),"
            ' spacing_z=None)))')
    cfg, ckpt = _save_model(config, str(tmp_path), 'raw_lits')
    result = inference_volume(cfg, ckpt, data['files']['nrrd'])
    assert result['preprocess'] == dict(window=(-200, 250), spacing_z=None)
    assert result['mask'].shape == (10, 48, 56)


def test_segment_dicom_series_with_pictures(data, seg_model, tmp_path):
    folder = data['files']['dicom']
    result = inference_volume(
        seg_model, None, folder, out_dir=str(tmp_path), overlay=True,
        window='soft_tissue')
    volume = read_volume(folder)
    mask = read_volume(result['files']['mask'])
    assert mask.shape == volume.shape == (5, 128, 128)
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-5)
    img = mpimg.imread(result['files']['overlay'])
    assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 0.05


def test_segment_with_ground_truth(data, seg_model, tmp_path):
    result = inference_volume(
        seg_model,
        None,
        data['files']['mha'],
        out_dir=str(tmp_path),
        overlay=True,
        gt_path=data['files']['label'])
    pred, gt = result['mask'] > 0, data['label'] > 0
    dice = 2 * (pred & gt).sum() / (pred.sum() + gt.sum())
    assert result['dice'] == pytest.approx(dice)
    assert _read_result(str(tmp_path), 'lung1_crop')['dice'] == \
        pytest.approx(dice)
    img = mpimg.imread(result['files']['overlay'])
    assert img.ndim == 3 and img.std() > 0.05


def test_segment_full_real_nrrd(tmp_path):
    """The whole lung1 NRRD (48 x 512 x 512) as it comes, whole-volume
    inference with a tiny strided model."""
    config = SEG_CONFIG.replace(SEG_MODEL.strip(), WHOLE_MODEL.strip())
    cfg, ckpt = _save_model(config, str(tmp_path), 'tiny_whole')
    path = fetch_pyradiomics_ct()[0]['image']
    result = inference_volume(cfg, ckpt, path, out_dir=str(tmp_path))
    mask = read_volume(result['files']['mask'])
    volume = read_volume(path)
    assert mask.shape == volume.shape == (48, 512, 512)
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-5)


def test_inference_errors(data, seg_model, tmp_path):
    cfg, ckpt = data['seg']
    # a label volume on another grid
    other = write_volume(
        Volume(data['label'][1:], data['crop'].affine),
        str(tmp_path / 'short_label.nii.gz'))
    with pytest.raises(ValueError, match='short_label.nii.gz .* not on the '
                       'grid'):
        inference_volume(seg_model, None, data['files']['nrrd'],
                         gt_path=other)
    # pictures need a folder
    with pytest.raises(ValueError, match='needs out_dir'):
        inference_volume(seg_model, None, data['files']['nrrd'],
                         overlay=True)
    # a missing input
    with pytest.raises(FileNotFoundError, match='nowhere.nrrd'):
        inference_volume(seg_model, None, str(tmp_path / 'nowhere.nrrd'))
    # a missing checkpoint
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        init_model(cfg, str(tmp_path / 'missing.pth'))
    # a checkpoint of another model: the message names file and key
    state = torch.load(ckpt, weights_only=True)['state_dict']
    state['backbone.conv1.conv.weight'] = torch.zeros(8, 1, 7, 7, 7)
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(dict(state_dict=state), wrong)
    with pytest.raises(RuntimeError, match='wrong.pth does not fit') as info:
        init_model(cfg, wrong)
    assert 'backbone.conv1.conv.weight' in str(info.value)
    # a DICOM folder with two series: both UIDs in the message
    mixed = str(tmp_path / 'mixed')
    shutil.copytree(data['files']['dicom'], mixed)
    _dicom_series(mixed, 2, series_uid='1.2.826.0.1.3680043.2.1125.99')
    with pytest.raises(ValueError, match='mixes 2 series') as info:
        inference_volume(seg_model, None, mixed)
    assert '1.2.826.0.1.3680043.2.1125.99 (2 files)' in str(info.value)
    # a test pipeline that loads 2D images
    config = SEG_CONFIG.replace(
        "dict(type='LoadVolumeNifti',\n"
        "         preprocess=dict(window=(-1000, 400), spacing_z=None)),",
        "dict(type='LoadImageFromFile'),")
    path = tmp_path / 'images.py'
    path.write_text(config)
    with pytest.raises(ValueError, match="starts with 'LoadImageFromFile'"):
        inference_volume(str(path), None, data['files']['nrrd'])


def test_detect_slices(data, tmp_path):
    import mmdet  # noqa: F401
    cfg, ckpt = _save_model(DET_CONFIG, str(tmp_path), 'tiny_det')
    path = data['files']['nrrd']
    result = inference_volume(
        cfg,
        ckpt,
        path,
        out_dir=str(tmp_path / 'out'),
        slices=[2, 7],
        overlay=True,
        score_thr=0.)
    volume = read_volume(path)
    dets = result['detections']
    assert result['classes'] == ['lesion']  # DeepLesionDataset's
    assert result['key_slices'] == [2, 7]
    assert 0 < len(dets) <= 2 * 4  # max_per_img boxes per key slice
    for det in dets:
        assert det['slice_index'] in (2, 7)
        x1, y1, x2, y2 = det['bbox_px']
        assert 0 <= x1 < x2 <= 56 and 0 <= y1 < y2 <= 48
        centre = volume.dhw_to_ras(
            [det['slice_index'], (y1 + y2) / 2 - .5, (x1 + x2) / 2 - .5])
        np.testing.assert_allclose(det['center_ras_mm'], centre, atol=1e-6)
        _, sy, sx = volume.spacing
        np.testing.assert_allclose(det['size_mm'],
                                   [(x2 - x1) * sx, (y2 - y1) * sy])
    with open(result['files']['boxes_json']) as f:
        boxes = json.load(f)
    assert boxes['detections'] == json.loads(json.dumps(dets))
    assert boxes['slice_spacing_mm'] == 2.5 and boxes['num_slices_stack'] == 9
    with open(result['files']['boxes_csv']) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(dets)
    assert float(rows[0]['center_z_ras_mm']) == pytest.approx(
        dets[0]['center_ras_mm'][2], abs=1e-3)
    assert 1 <= len(result['files']['pictures']) <= 2
    for png in result['files']['pictures']:
        assert mpimg.imread(png).ndim == 3
    # key slices outside the volume
    with pytest.raises(ValueError, match=r'slices \[10\] are outside'):
        inference_volume(cfg, ckpt, path, slices=[10])


# [first transform of the test pipeline, mode, HU window the model sees]
LOADERS = [
    [dict(type='LoadVolumeNifti', preprocess=dict(window=(-200, 250))),
     'volume', (-200, 250)],
    [dict(type='LoadNoduleNpz', to_float32=True), 'volume', (-1024., 400.)],
    [dict(type='LoadDeepLesionSlices', num_slices=5, slice_spacing=2.,
          hu_window=(-1000, 1000)), 'stack', (-1000., 1000.)],
    [dict(type='LoadVolumeArray', num_slices=3), 'stack', (-1024., 1050.)],
]


@pytest.mark.parametrize('first,mode,hu_window', LOADERS)
def test_build_volume_pipeline_loaders(data, first, mode, hu_window):
    from mmengine.config import Config
    cfg = Config(
        dict(
            default_scope='mmseg',
            test_dataloader=dict(dataset=dict(pipeline=[first]))))
    loader, rest, info = build_volume_pipeline(cfg)
    assert info['loader'] == first['type']
    assert info['mode'] == mode
    assert tuple(info['hu_window']) == hu_window
    results = loader(dict(volume=data['crop'], key_slice=4))
    if mode == 'volume':
        assert results['img'].shape[0] == 1
        if first['type'] == 'LoadNoduleNpz':  # windowed as the release
            assert results['img'].dtype == np.float32
            assert results['img'].min() >= 0 and results['img'].max() <= 255
    else:
        assert results['img'].shape == (48, 56, first['num_slices'])


def test_real_lits_config_pipeline(data):
    """The LiTS configs read prepared volumes: given the preparation's
    settings, a raw CT goes through their test pipeline."""
    from svd_mm.apis import load_config
    path = os.path.join(
        os.path.dirname(__file__), '..', '..', 'configs', 'lits',
        'unet3d_r3d18-scratch_8xb2-500e_lits-32x256x256.py')
    assert os.path.isfile(path), f'{path} is missing from the checkout'
    cfg = load_config(
        path, {
            'test_dataloader.dataset.preprocess':
            dict(window=(-200, 250), spacing_z=1.0)
        })
    loader, rest, info = build_volume_pipeline(cfg)
    assert info['preprocess'] == dict(window=(-200, 250), spacing_z=1.0)
    packed = rest(loader(dict(volume=data['crop'])))
    # 10 slices of 5 mm -> 46 slices of 1 mm, uint8 as prepared
    assert packed['inputs'].shape == torch.Size([1, 46, 48, 56])
    assert packed['inputs'].dtype == torch.uint8
    assert packed['data_samples'].original_geometry['shape'] == [10, 48, 56]
