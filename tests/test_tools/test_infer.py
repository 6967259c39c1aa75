"""tools/infer.py on real CT: files written on the input's grid, pictures,
clear errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import mmseg  # noqa: F401
import numpy as np
import pydicom
import pytest
import torch

from svd_mm.utils.medical_io import read_volume, write_volume
from tests.helpers import dicom_series_from, pydicom_test_file
from tests.helpers.ct_crops import lesion_crop
from tests.helpers.tools import load_script

TOOL = Path(__file__).parents[2] / 'tools' / 'infer.py'
infer = load_script(TOOL, 'infer_tool')

CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['svd_mm'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder3D',
    data_preprocessor=dict(
        type='SegVolumeDataPreprocessor', mean=[128.], std=[64.]),
    backbone=dict(
        type='ResNet3D', depth=18, base_channels=4, num_stages=2,
        strides=(1, 2), slice_strides=(1, 1), dilations=(1, 1),
        with_maxpool=False, out_indices=(1, )),
    decode_head=dict(
        type='FCNHead3D', in_channels=8, channels=4, num_classes=2,
        scale_factors=((1, 2, 2), (1, 2, 2)), dropout_ratio=0,
        loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='slide', crop_size=(8, 32, 32), stride=(8, 32, 32)))
test_pipeline = [
    dict(type='LoadVolumeNifti',
         preprocess=dict(window=(-1000, 400), spacing_z=None)),
    dict(type='PackSegVolumeInputs'),
]
test_dataloader = dict(
    batch_size=1, dataset=dict(type='LiTSDataset', pipeline=test_pipeline))
"""


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A (8, 40, 48) crop of real CT around lung1's lesion as NRRD, its
    lesion mask, and a tiny model."""
    from svd_mm.apis import init_model
    root = tmp_path_factory.mktemp('infer_tool')
    crop, label = lesion_crop((8, 40, 48))
    image = write_volume(crop, str(root / 'lung1.nrrd'), dtype=np.int16)
    mask = write_volume(
        label, str(root / 'lung1_mask.nii.gz'), dtype=np.uint8)
    config = root / 'tiny_seg.py'
    config.write_text(CONFIG)
    torch.manual_seed(0)
    model = init_model(str(config), device='cpu')
    ckpt = str(root / 'tiny_seg.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return dict(root=root, image=image, mask=mask, config=str(config),
                ckpt=ckpt)


def test_infer_tool(files, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run([
        sys.executable,
        str(TOOL), files['config'], files['ckpt'], files['image'], '--out',
        str(out), '--overlay', '--gt', files['mask'], '--device', 'cpu',
        '--window', '-600', '1500'
    ],
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert 'Dice with' in proc.stdout
    assert 'liver:' in proc.stdout  # LiTSDataset's class names
    mask = read_volume(str(out / 'lung1_seg.nii.gz'))
    image = read_volume(files['image'])
    assert mask.shape == image.shape == (8, 40, 48)
    np.testing.assert_allclose(mask.affine, image.affine, atol=1e-5)
    png = mpimg.imread(str(out / 'lung1_overlay.png'))
    assert png.ndim == 3 and png.std() > 0.05
    with open(out / 'lung1_result.json') as f:
        result = json.load(f)
    assert result['input'] == files['image']
    assert 0 <= result['dice'] <= 1
    assert set(result['files']) == {'mask', 'overlay', 'result'}


def test_infer_tool_errors(files, tmp_path):
    args = [files['config'], files['ckpt']]
    out = ['--out', str(tmp_path / 'out')]
    # a missing input: the path is named
    with pytest.raises(SystemExit, match='error: .*nowhere.nrrd'):
        infer.main(args + [str(tmp_path / 'nowhere.nrrd')] + out)
    # a DICOM folder with two series: their UIDs are named
    from pydicom.data import get_testdata_file
    folder = tmp_path / 'mixed'
    folder.mkdir()
    for n, uid in enumerate(('1.2.3.4.1', '1.2.3.4.2')):
        ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
        ds.SeriesInstanceUID = uid
        ds.save_as(str(folder / f'{n}.dcm'))
    with pytest.raises(SystemExit, match=r'1\.2\.3\.4\.1 .*1\.2\.3\.4\.2'):
        infer.main(args + [str(folder)] + out)
    # ... and --series-uid picks one
    infer.main(args + [str(folder), '--series-uid', '1.2.3.4.2'] + out)
    assert os.path.isfile(tmp_path / 'out' / 'mixed_seg.nii.gz')
    # a checkpoint that does not fit the config
    wrong = tmp_path / 'wrong.pth'
    torch.save(dict(state_dict={'backbone.conv1.conv.weight':
                                torch.zeros(1)}), wrong)
    with pytest.raises(SystemExit, match='wrong.pth does not fit'):
        infer.main([files['config'], str(wrong), files['image']] + out)
    # a ground truth on another grid
    with pytest.raises(SystemExit, match='not on the grid'):
        infer.main(args + [files['image'], '--gt',
                           str(folder / '0.dcm')] + out)


def test_infer_tool_jpeg_ls_series(files, tmp_path):
    # eight JPEG-LS lossless MR slices (pydicom's test file), decoded by GDCM
    folder = tmp_path / 'jpeg_ls'
    dicom_series_from(
        pydicom_test_file('MR_small_jpeg_ls_lossless.dcm'), str(folder),
        slices=(3, 1, 0, 2, 7, 5, 4, 6), gap=0.8)
    out = tmp_path / 'out'
    infer.main([files['config'], files['ckpt'], str(folder), '--out',
                str(out), '--device', 'cpu'])
    volume = read_volume(str(folder))
    mask = read_volume(str(out / 'jpeg_ls_seg.nii.gz'))
    assert mask.shape == volume.shape == (8, 64, 64)
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-5)
    assert set(np.unique(mask.array)) <= {0., 1.}


def test_infer_tool_hides_known_warnings(files, tmp_path):
    # mmseg's build_loss deprecation (and its advice on binary heads) is
    # printed by every 3D segmentation head: hidden unless --verbose
    args = [
        sys.executable,
        str(TOOL), files['config'], files['ckpt'], files['image'], '--out',
        str(tmp_path / 'out'), '--device', 'cpu'
    ]
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    quiet = subprocess.run(
        args, capture_output=True, text=True, timeout=600, env=env)
    verbose = subprocess.run(
        args + ['--verbose'],
        capture_output=True,
        text=True,
        timeout=600,
        env=env)
    assert quiet.returncode == 0 and verbose.returncode == 0, verbose.stderr
    assert 'Warning' not in quiet.stderr, quiet.stderr
    assert '``build_loss`` would be deprecated' in verbose.stderr
    assert 'For binary segmentation' in verbose.stderr
    assert 'liver:' in quiet.stdout and 'liver:' in verbose.stdout


@pytest.mark.parametrize('fmt', ['nifti', 'mha', 'dicom'])
def test_infer_tool_formats(files, tmp_path, fmt):
    """NIfTI, MetaImage and an uncompressed DICOM series (NRRD: above;
    JPEG-LS DICOM: test_infer_tool_jpeg_ls_series)."""
    if fmt == 'dicom':  # pydicom's CT_small: explicit VR little endian
        path = str(tmp_path / 'ct_small')
        dicom_series_from(
            pydicom_test_file('CT_small.dcm'), path, slices=(1, 0, 2),
            gap=5.)
    else:
        suffix = dict(nifti='.nii.gz', mha='.mha')[fmt]
        path = write_volume(
            read_volume(files['image']), str(tmp_path / f'lung1{suffix}'),
            dtype=np.int16)
    out = tmp_path / 'out'
    infer.main([
        files['config'], files['ckpt'], path, '--out',
        str(out), '--device', 'cpu'
    ])
    volume = read_volume(path)
    stem = 'ct_small' if fmt == 'dicom' else 'lung1'
    mask = read_volume(str(out / f'{stem}_seg.nii.gz'))
    assert mask.shape == volume.shape
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-5)
    if fmt != 'dicom':  # the same CT as the NRRD: the same mask
        infer.main([
            files['config'], files['ckpt'], files['image'], '--out',
            str(tmp_path / 'nrrd'), '--device', 'cpu'
        ])
        reference = read_volume(str(tmp_path / 'nrrd' / 'lung1_seg.nii.gz'))
        np.testing.assert_array_equal(mask.array, reference.array)


def test_infer_tool_crop_trained_config(files, tmp_path, capsys):
    """A config whose test pipeline crops runs over the whole volume with a
    crop-sized window, --overlap apart; the config file is unchanged."""
    config = tmp_path / 'crop_seg.py'
    config.write_text(
        CONFIG.replace(
            "dict(type='PackSegVolumeInputs'),",
            "dict(type='CenterCrop3D', crop_size=(8, 32, 32)),\n"
            "    dict(type='PackSegVolumeInputs'),"))
    text = config.read_text()
    out = tmp_path / 'out'
    infer.main([
        str(config), files['ckpt'], files['image'], '--out',
        str(out), '--overlap', '0.25', '--device', 'cpu'
    ])
    mask = read_volume(str(out / 'lung1_seg.nii.gz'))
    assert mask.shape == read_volume(files['image']).shape == (8, 40, 48)
    with open(out / 'lung1_result.json') as f:
        result = json.load(f)
    assert result['sliding_window'] == dict(
        crop_size=[8, 32, 32], stride=[6, 24, 24], overlap=0.25)
    assert config.read_text() == text
    with pytest.raises(SystemExit, match=r'overlap must lie in \[0, 1\)'):
        infer.main([
            str(config), files['ckpt'], files['image'], '--out',
            str(out), '--overlap', '1'
        ])
