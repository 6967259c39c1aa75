"""The volume inferencers on real CT: a crop-trained LIDC segmentation config
over a whole CT (sliding window), the inferencer API (several inputs,
batches, data samples, errors) and a DeepLesion detection config."""
import json
import os
import os.path as osp

import mmdet  # noqa: F401
import mmseg  # noqa: F401
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmseg.structures import SegDataSample

from svd_mm.apis import VolumeDetInferencer, VolumeSegInferencer, init_model
from svd_mm.utils.medical_io import read_volume, write_volume
from tests.helpers import dicom_series_from, pydicom_test_file
from tests.helpers.ct_crops import lesion_crop
from tests.helpers.data_cache import fetch_pyradiomics_ct

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LIDC_SEG = osp.join(REPO, 'configs', 'lidc', 'seg',
                    'fcn3d_r3d18-scratch_4xb4-100e_lidc-seg-48.py')
DEEPLESION = osp.join(REPO, 'configs', 'deeplesion',
                      'faster-rcnn_r3d18-scratch_gtm-fpn_8xb2-24e_'
                      'deeplesion.py')
# The LIDC model at width 2 with a stem of stride 4 (the decoder's output
# is resized to the window): cheap enough for the ~150 windows of 48^3
# over a 48 x 512 x 512 CT on two CPU cores; 72 windows per forward pass.
LIDC_TINY = {
    'model.backbone.base_channels': 2,
    'model.backbone.stem_stride': 4,
    'model.backbone.stem_slice_stride': 4,
    'model.decode_head.in_channels': 16,
    'model.decode_head.channels': 4,
    'model.test_cfg.batch_windows': 72,
}
# The DeepLesion detector at width 8 (as tests/test_configs), 64 px slices,
# every box kept.
DEEPLESION_TINY = {
    'model.backbone.base_channels': 8,
    'model.backbone.norm_cfg.num_groups': 4,
    'model.neck.0.in_channels': [8, 16, 32, 64],
    'model.neck.0.norm_cfg.num_groups': 4,
    'model.neck.1.in_channels': [8, 16, 32, 64],
    'model.neck.1.out_channels': 16,
    'model.rpn_head.in_channels': 16,
    'model.rpn_head.feat_channels': 16,
    'model.roi_head.bbox_roi_extractor.out_channels': 16,
    'model.roi_head.bbox_head.in_channels': 16,
    'model.roi_head.bbox_head.fc_out_channels': 32,
    'model.test_cfg.rpn.nms_pre': 100,
    'model.test_cfg.rpn.max_per_img': 20,
    'model.test_cfg.rcnn.score_thr': 0.,
    'model.test_cfg.rcnn.max_per_img': 4,
    'test_dataloader.dataset.pipeline.1.scale': (64, 64),
}


def _save_checkpoint(config, options, path, meta=None):
    torch.manual_seed(0)
    model = init_model(config, device='cpu', cfg_options=options)
    torch.save(dict(state_dict=model.state_dict(), meta=meta or {}), path)
    return path


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Real CT around lung1's lesion (10 x 48 x 56) as NRRD and MHA, its
    lesion mask, a DICOM series of 4 CT_small slices, and a checkpoint of
    the tiny LIDC model."""
    root = tmp_path_factory.mktemp('inferencers')
    crop, label = lesion_crop((10, 48, 56))
    files = dict(ct=fetch_pyradiomics_ct()[0]['image'])
    for fmt in ('nrrd', 'mha'):
        files[fmt] = write_volume(
            crop, str(root / f'lung1_crop.{fmt}'), dtype=np.int16)
    files['label'] = write_volume(
        label, str(root / 'lung1_label.nii.gz'), dtype=np.uint8)
    files['dicom'] = str(root / 'ct_small')
    dicom_series_from(
        pydicom_test_file('CT_small.dcm'), files['dicom'],
        slices=(2, 0, 3, 1), gap=5.)
    files['lidc_ckpt'] = _save_checkpoint(
        LIDC_SEG, LIDC_TINY, str(root / 'lidc_tiny.pth'),
        dict(dataset_meta=dict(classes=['background', 'nodule'])))
    return dict(files=files, crop=crop, label=label.array)


def test_crop_trained_config_over_whole_ct(data, tmp_path):
    """The LIDC config tests 48^3 centre crops; over a whole CT its model
    slides a 48^3 window with the asked overlap, and the mask has the CT's
    shape and geometry."""
    inferencer = VolumeSegInferencer(
        LIDC_SEG,
        data['files']['lidc_ckpt'],
        device='cpu',
        cfg_options=LIDC_TINY,
        overlap=0.1)
    assert inferencer.pipeline_info['dropped'] == ['CenterCrop3D']
    test_cfg = inferencer.model.test_cfg
    assert test_cfg.mode == 'slide' and test_cfg.batch_windows == 72
    assert tuple(test_cfg.crop_size) == (48, 48, 48)
    assert tuple(test_cfg.stride) == (43, 43, 43)  # 48 * (1 - 0.1), rounded
    # the windows that go through the network
    windows = []
    encode_decode = inferencer.model.encode_decode

    def spy(inputs, metas):
        windows.append(tuple(inputs.shape))
        return encode_decode(inputs, metas)

    inferencer.model.encode_decode = spy
    path = data['files']['ct']
    pred = inferencer(path, out_dir=str(tmp_path))['predictions'][0]
    # D: one window; H, W: origins 0, 43, ..., 430 and 464 (end-aligned)
    assert {w[1:] for w in windows} == {(1, 48, 48, 48)}
    assert sum(w[0] for w in windows) == 1 * 12 * 12
    volume = read_volume(path)
    mask = read_volume(pred['files']['mask'])
    assert mask.shape == volume.shape == (48, 512, 512)
    np.testing.assert_allclose(mask.affine, volume.affine, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(mask.array, pred['mask'])
    assert set(np.unique(pred['mask'])) <= {0, 1}
    window = dict(crop_size=[48] * 3, stride=[43] * 3, overlap=0.1)
    assert pred['sliding_window'] == window
    with open(pred['files']['result']) as f:
        summary = json.load(f)
    assert summary['sliding_window'] == window
    assert summary['classes'] == ['background', 'nodule']
    assert summary['test_loader'] == 'LoadNoduleNpz'
    # the config (file and object) still crops
    for cfg in (Config.fromfile(LIDC_SEG), inferencer.cfg):
        assert cfg.test_dataloader.dataset.pipeline[1].type == 'CenterCrop3D'


def test_infer_tool_crop_trained_lidc_model_on_whole_ct(data, tmp_path):
    """tools/infer.py with the LIDC config (tests 48^3 crops) and its
    checkpoint on the whole lung1 CT (NRRD): the mask has the CT's shape
    and geometry."""
    from tests.helpers.tools import load_script
    infer = load_script(osp.join(REPO, 'tools', 'infer.py'))
    options = [f'{key}={value}' for key, value in LIDC_TINY.items()]
    infer.main([
        LIDC_SEG, data['files']['lidc_ckpt'], data['files']['ct'], '--out',
        str(tmp_path), '--device', 'cpu', '--overlap', '0.1',
        '--cfg-options', *options
    ])
    (summary, ) = tmp_path.glob('*_result.json')
    with open(summary) as f:
        summary = json.load(f)
    assert summary['sliding_window']['stride'] == [43, 43, 43]
    volume = read_volume(data['files']['ct'])
    mask = read_volume(summary['files']['mask'])
    assert mask.shape == volume.shape == (48, 512, 512)
    np.testing.assert_allclose(mask.affine, volume.affine, rtol=0, atol=1e-9)


def test_seg_inferencer_api(data, tmp_path):
    """Several inputs (files, a DICOM series, a Volume), batches, ground
    truths, data samples; volumes shorter than the window are padded."""
    inferencer = VolumeSegInferencer(
        model=LIDC_SEG,
        weights=data['files']['lidc_ckpt'],
        device='cpu',
        cfg_options=LIDC_TINY)
    assert tuple(inferencer.model.test_cfg.stride) == (24, 24, 24)
    files = data['files']
    # the same CT as NRRD and MHA in one batch; the second name is indexed
    out = inferencer([files['nrrd'], files['mha']],
                     batch_size=2,
                     out_dir=str(tmp_path),
                     overlay=True,
                     gt=[files['label'], None])
    first, second = out['predictions']
    assert out['visualization'] == [
        str(tmp_path / 'lung1_crop_overlay.png'),
        str(tmp_path / 'lung1_crop_1_overlay.png')
    ]
    for pred in (first, second):
        mask = read_volume(pred['files']['mask'])
        assert mask.shape == (10, 48, 56)  # D 10 < 48: padded and cut
        np.testing.assert_allclose(mask.affine, data['crop'].affine,
                                   atol=1e-5)
        np.testing.assert_array_equal(mask.array, pred['mask'])
    assert second['files']['mask'] == str(tmp_path /
                                          'lung1_crop_1_seg.nii.gz')
    np.testing.assert_array_equal(first['mask'], second['mask'])
    pred, gt = first['mask'] > 0, data['label'] > 0
    assert first['dice'] == pytest.approx(
        2 * (pred & gt).sum() / (pred.sum() + gt.sum()))
    assert 'dice' not in second
    # a DICOM series and a Volume in memory, as data samples
    samples = inferencer([files['dicom'], data['crop']],
                         return_datasamples=True)['predictions']
    assert all(isinstance(s, SegDataSample) for s in samples)
    assert [s.input_index for s in samples] == [0, 1]
    assert samples[0].pred_sem_seg.data.shape == (1, 4, 128, 128)
    np.testing.assert_array_equal(samples[1].pred_sem_seg.data[0].numpy(),
                                  first['mask'])
    assert not os.path.exists(tmp_path / 'ct_small_seg.nii.gz')


def test_seg_inferencer_errors(data, tmp_path):
    files = data['files']
    with pytest.raises(ValueError, match=r'overlap must lie in \[0, 1\)'):
        VolumeSegInferencer(LIDC_SEG, cfg_options=LIDC_TINY, overlap=1.)
    inferencer = VolumeSegInferencer(
        LIDC_SEG, device='cpu', cfg_options=LIDC_TINY)
    with pytest.raises(ValueError, match='2 ground truths for 1 inputs'):
        inferencer(files['nrrd'], gt=[files['label'], files['label']])
    with pytest.raises(ValueError, match='unknown argument'):
        inferencer(files['nrrd'], slices=[1])  # a detection argument
    with pytest.raises(ValueError, match='same depth D'):
        inferencer([files['nrrd'], files['dicom']], batch_size=2)
    # strict loading through the inferencer: file and config named
    state = torch.load(files['lidc_ckpt'], weights_only=True)['state_dict']
    state.pop('decode_head.conv_seg.weight')
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(dict(state_dict=state), wrong)
    with pytest.raises(RuntimeError,
                       match=r'wrong.pth does not fit .*lidc-seg-48.py'):
        VolumeSegInferencer(LIDC_SEG, wrong, 'cpu', cfg_options=LIDC_TINY)
    with pytest.raises(ValueError, match='runs mmseg segmentors'):
        VolumeSegInferencer(
            DEEPLESION, device='cpu', cfg_options=DEEPLESION_TINY)
    with pytest.raises(ValueError, match='runs mmdet detectors'):
        VolumeDetInferencer(LIDC_SEG, device='cpu', cfg_options=LIDC_TINY)
    # a segmentor whose test pipeline loads slice stacks
    stacks = dict(LIDC_TINY, **{
        'test_dataloader.dataset.pipeline.0':
        dict(type='LoadDeepLesionSlices')
    })
    with pytest.raises(
            ValueError, match='loads LoadDeepLesionSlices, which gives a'):
        VolumeSegInferencer(LIDC_SEG, device='cpu', cfg_options=stacks)


def test_det_inferencer_deeplesion_config(data, tmp_path):
    """The DeepLesion config (tiny) on two key slices of real CT."""
    ckpt = _save_checkpoint(DEEPLESION, DEEPLESION_TINY,
                            str(tmp_path / 'det.pth'))
    inferencer = VolumeDetInferencer(
        DEEPLESION, ckpt, device='cpu', cfg_options=DEEPLESION_TINY)
    path = data['files']['nrrd']
    out = inferencer(
        path,
        batch_size=2,
        out_dir=str(tmp_path / 'out'),
        slices=[2, 7],
        overlay=True,
        pred_score_thr=0.)
    pred = out['predictions'][0]
    volume = read_volume(path)
    assert pred['classes'] == ['lesion']  # DeepLesionDataset's
    assert pred['key_slices'] == [2, 7]
    assert pred['num_slices_stack'] == 9 and pred['slice_spacing_mm'] == 2.5
    assert 0 < len(pred['detections']) <= 2 * 4  # max_per_img per slice
    for det in pred['detections']:
        x1, y1, x2, y2 = det['bbox_px']
        assert det['slice_index'] in (2, 7)
        assert 0 <= x1 < x2 <= 56 and 0 <= y1 < y2 <= 48
        np.testing.assert_allclose(
            det['center_ras_mm'],
            volume.dhw_to_ras([
                det['slice_index'], (y1 + y2) / 2 - .5, (x1 + x2) / 2 - .5
            ]),
            atol=1e-6)
    with open(pred['files']['boxes_json']) as f:
        assert json.load(f)['detections'] == json.loads(
            json.dumps(pred['detections']))
    assert out['visualization'] == [pred['files']['pictures']]
    assert 1 <= len(pred['files']['pictures']) <= 2
    # the data samples: one per key slice
    samples = inferencer(
        path, slices=[7, 2], return_datasamples=True)['predictions'][0]
    assert all(isinstance(s, DetDataSample) for s in samples)
    assert [s.key_slice for s in samples] == [7, 2]
    boxes = [d['bbox_px'] for d in pred['detections']
             if d['slice_index'] == 7]
    np.testing.assert_allclose(samples[0].pred_instances.bboxes.numpy(),
                               np.array(boxes).reshape(-1, 4), atol=1e-3)
    with pytest.raises(ValueError, match=r'slices \[10\] are outside'):
        inferencer(path, slices=[10])
