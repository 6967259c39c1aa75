import copy
import subprocess
import sys

import mmcv
import mmdet  # noqa: F401
import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import PackDetInputs  # noqa: E402
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import TRANSFORMS  # noqa: E402

from svd_mm.datasets.transforms import PackDetVolumeInputs  # noqa: E402
from tests.helpers.data_cache import fetch_foolbox_images  # noqa: E402

# A non-square crop of a real photo and two boxes on it, the second ignored.
CROP_HW = (300, 420)
BOXES = [[30., 40., 200., 260.], [250., 10., 400., 120.]]
LABELS = [3, 5]
IGNORE = [0, 1]


@pytest.fixture(scope='module')
def photo_info(tmp_path_factory):
    item = [i for i in fetch_foolbox_images() if i['split'] == 'imagenet'][3]
    img = mmcv.imread(item['path'])[:CROP_HW[0], :CROP_HW[1]]
    path = str(tmp_path_factory.mktemp('det') / 'photo.png')
    assert mmcv.imwrite(img, path)
    instances = [
        dict(bbox=box, bbox_label=label, ignore_flag=flag)
        for box, label, flag in zip(BOXES, LABELS, IGNORE)
    ]
    return dict(img_id=0, img_path=path, instances=instances)


def _pipeline(with_volume=True, scale=(160, 96)):
    cfgs = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=1.),
    ]
    if with_volume:
        cfgs += [dict(type='RGBToVolume'), dict(type='PackDetVolumeInputs')]
    else:
        cfgs += [dict(type='PackDetInputs')]
    return Compose([MMDET_TRANSFORMS.build(cfg) for cfg in cfgs])


def test_pack_det_volume_inputs_registry():
    assert MMDET_TRANSFORMS.get('PackDetVolumeInputs') is PackDetVolumeInputs
    assert issubclass(PackDetVolumeInputs, PackDetInputs)
    # mmdet-only: the toolbox-free root registry does not hold it.
    assert 'PackDetVolumeInputs' not in TRANSFORMS.module_dict


# [Resize scale (keep_ratio: long and short edge limits), volume shape]
SCALE_CASES = [
    [(160, 96), (1, 3, 96, 134)],
    [(420, 300), (1, 3, 300, 420)],
    [(64, 512), (1, 3, 64, 90)],
]


@pytest.mark.parametrize('scale,volume_shape', SCALE_CASES)
def test_pack_det_volume_inputs_pipeline(photo_info, scale, volume_shape):
    packed = _pipeline(scale=scale)(copy.deepcopy(photo_info))
    inputs, data_sample = packed['inputs'], packed['data_samples']
    assert isinstance(inputs, torch.Tensor)
    assert inputs.shape == torch.Size(volume_shape)
    assert inputs.dtype == torch.uint8
    assert inputs.is_contiguous()
    assert isinstance(data_sample, DetDataSample)
    h, w = volume_shape[2:]
    assert data_sample.img_shape == (h, w)
    assert data_sample.ori_shape == CROP_HW
    assert data_sample.flip is True
    assert data_sample.flip_direction == 'horizontal'

    # The boxes went through resize and flip as in plain mmdet.
    sx, sy = data_sample.scale_factor
    assert (sx, sy) == pytest.approx((w / CROP_HW[1], h / CROP_HW[0]),
                                     rel=1e-2)
    x1, y1, x2, y2 = BOXES[0]
    expected = torch.tensor([[w - x2 * sx, y1 * sy, w - x1 * sx, y2 * sy]])
    bboxes = data_sample.gt_instances.bboxes.tensor
    assert bboxes.shape == torch.Size([1, 4])
    torch.testing.assert_close(bboxes, expected, atol=1e-3, rtol=0)
    assert data_sample.gt_instances.labels.tolist() == [LABELS[0]]
    assert data_sample.ignored_instances.labels.tolist() == [LABELS[1]]


def test_pack_det_volume_inputs_matches_parent(photo_info):
    packed = _pipeline(with_volume=True)(copy.deepcopy(photo_info))
    packed_2d = _pipeline(with_volume=False)(copy.deepcopy(photo_info))
    volume, image = packed['inputs'], packed_2d['inputs']
    assert image.shape == torch.Size([3, 96, 134])
    # Slice 0 is the R plane of the BGR image packed by mmdet.
    assert torch.equal(volume[0, 0], image[2])
    assert torch.equal(volume[0], image.flip(0))
    sample, sample_2d = packed['data_samples'], packed_2d['data_samples']
    assert sample.metainfo.keys() == sample_2d.metainfo.keys()
    for key, value in sample_2d.metainfo.items():
        np.testing.assert_array_equal(sample.metainfo[key], value)
    for field in ('gt_instances', 'ignored_instances'):
        ours, theirs = sample.get(field), sample_2d.get(field)
        assert torch.equal(ours.bboxes.tensor, theirs.bboxes.tensor)
        assert torch.equal(ours.labels, theirs.labels)


def test_pack_det_volume_inputs_images_as_parent(photo_info):
    img = mmcv.imread(photo_info['img_path'])
    pack, parent = PackDetVolumeInputs(), PackDetInputs()
    # (H, W, 3) colour image -> (3, H, W)
    ours = pack(dict(img=img.copy()))['inputs']
    assert ours.shape == torch.Size([3, 300, 420])
    assert torch.equal(ours, parent(dict(img=img.copy()))['inputs'])
    # (H, W) grayscale image -> (1, H, W)
    gray = np.ascontiguousarray(img[..., 0])
    ours = pack(dict(img=gray))['inputs']
    assert ours.shape == torch.Size([1, 300, 420])
    assert torch.equal(ours, parent(dict(img=gray))['inputs'])


def test_pack_det_volume_inputs_keeps_results(photo_info):
    # Everything up to and including RGBToVolume.
    results = Compose(_pipeline().transforms[:-1])(copy.deepcopy(photo_info))
    volume = results['img']
    assert volume.shape == (1, 3, 96, 134)
    packed = PackDetVolumeInputs()(results)
    # The caller's dict still holds the numpy volume.
    assert results['img'] is volume
    assert torch.equal(packed['inputs'], torch.from_numpy(volume))


def test_pack_det_volume_inputs_rejects_5d(photo_info):
    # A 5-D array is neither an image nor a (C, D, H, W) volume
    results = dict(
        img=np.zeros((1, 1, 3, 8, 8), dtype=np.uint8),
        img_path=photo_info['img_path'])
    with pytest.raises(ValueError, match=r'\(1, 1, 3, 8, 8\)'):
        PackDetVolumeInputs()(results)


def test_pack_det_volume_inputs_repr():
    assert repr(PackDetVolumeInputs(meta_keys=('img_id', ))) == (
        "PackDetVolumeInputs(meta_keys=('img_id',))")


def test_import_svd_mm_without_mmdet():
    # With mmdet unimportable, `import svd_mm` still works, the toolbox-free
    # transforms are exported and the mmdet-only packer is not.
    code = ('import sys; sys.modules["mmdet"] = None; import svd_mm; '
            'from svd_mm.datasets import transforms; '
            'print(transforms.__all__)')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    exported = proc.stdout.strip()
    assert "'RGBToVolume'" in exported
    assert 'PackDetVolumeInputs' not in exported
