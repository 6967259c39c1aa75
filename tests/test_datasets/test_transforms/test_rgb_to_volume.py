import copy

import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import TRANSFORMS
from mmengine.runner import set_random_seed

from svd_mm.datasets.transforms import RGBToVolume
from tests.helpers.data_cache import fetch_foolbox_images


@pytest.fixture(scope='module')
def foolbox_images():
    items = fetch_foolbox_images()
    return {
        split: [item for item in items if item['split'] == split]
        for split in ('imagenet', 'cifar10')
    }


def _load(item, crop=None):
    """Real BGR uint8 image, optionally cropped to a non-square (h, w)."""
    img = mmcv.imread(item['path'], flag='color')
    if crop is not None:
        img = img[:crop[0], :crop[1]]
    return dict(img=img, img_path=item['path'], img_shape=img.shape[:2])


# [split, index, crop (h, w) or None, expected volume shape]
SHAPE_CASES = [
    ['cifar10', 0, None, (1, 3, 32, 32)],
    ['cifar10', 5, (32, 19), (1, 3, 32, 19)],
    ['imagenet', 0, None, (1, 3, 512, 512)],
    ['imagenet', 3, (224, 160), (1, 3, 224, 160)],
    ['imagenet', 7, (37, 301), (1, 3, 37, 301)],
]


@pytest.mark.parametrize('split,index,crop,volume_shape', SHAPE_CASES)
def test_rgb_to_volume_shapes(foolbox_images, split, index, crop,
                              volume_shape):
    results = _load(foolbox_images[split][index], crop)
    bgr = results['img'].copy()
    results = RGBToVolume()(results)
    volume = results['img']
    assert volume.shape == volume_shape
    assert volume.dtype == np.uint8
    assert volume.flags.c_contiguous
    assert results['volume_shape'] == volume_shape
    assert results['volume_slice_order'] == 'rgb'
    # The 2D plane is not touched: img_shape still describes (H, W).
    assert results['img_shape'] == volume_shape[2:]
    # Colour became depth: slice d is colour plane d, voxel for voxel.
    np.testing.assert_array_equal(volume[0, 0], bgr[..., 2])  # R
    np.testing.assert_array_equal(volume[0, 1], bgr[..., 1])  # G
    np.testing.assert_array_equal(volume[0, 2], bgr[..., 0])  # B


def test_rgb_to_volume_slice_order_bgr(foolbox_images):
    results = _load(foolbox_images['imagenet'][1], crop=(64, 96))
    bgr = results['img'].copy()
    results = RGBToVolume(slice_order='bgr')(results)
    assert results['volume_slice_order'] == 'bgr'
    np.testing.assert_array_equal(results['img'][0], bgr.transpose(2, 0, 1))
    # A real photo has distinct colour planes, so the two orders differ.
    rgb_volume = RGBToVolume()(_load(foolbox_images['imagenet'][1],
                                     (64, 96)))['img']
    assert not np.array_equal(rgb_volume, results['img'])
    np.testing.assert_array_equal(rgb_volume[0, ::-1], results['img'][0])


def test_rgb_to_volume_keeps_dtype(foolbox_images):
    results = _load(foolbox_images['cifar10'][2])
    expected = results['img'][..., 2].astype(np.float32) / 255.
    results['img'] = results['img'].astype(np.float32) / 255.
    volume = RGBToVolume()(results)['img']
    assert volume.dtype == np.float32
    assert volume.shape == (1, 3, 32, 32)
    np.testing.assert_array_equal(volume[0, 0], expected)


def test_rgb_to_volume_non_contiguous_input(foolbox_images):
    # A horizontally flipped view (negative stride), as after RandomFlip.
    results = _load(foolbox_images['imagenet'][2], crop=(48, 80))
    flipped = results['img'][:, ::-1]
    assert not flipped.flags.c_contiguous
    results['img'] = flipped
    volume = RGBToVolume()(results)['img']
    assert volume.flags.c_contiguous
    np.testing.assert_array_equal(volume[0, 0], flipped[..., 2])


def _slices(volume):
    return sorted(volume[0, d].tobytes() for d in range(volume.shape[1]))


def test_rgb_to_volume_shuffle_reproducible(foolbox_images):
    transform = RGBToVolume(shuffle_prob=0.5)
    item = foolbox_images['imagenet'][4]
    runs = []
    for _ in range(2):
        set_random_seed(2024)
        runs.append([
            transform(_load(item, (40, 56)))['volume_slice_order']
            for _ in range(12)
        ])
    assert runs[0] == runs[1]
    # shuffle_prob=0.5 over 12 draws: some kept, some shuffled.
    assert len(set(runs[0])) > 1


def test_rgb_to_volume_shuffle_permutes_slices(foolbox_images):
    transform = RGBToVolume(shuffle_prob=1.)
    item = foolbox_images['imagenet'][5]
    reference = RGBToVolume()(_load(item, (40, 56)))['img']
    orders = set()
    for seed in range(20):
        set_random_seed(seed)
        results = transform(_load(item, (40, 56)))
        volume, order = results['img'], results['volume_slice_order']
        orders.add(order)
        assert volume.shape == (1, 3, 40, 56)
        assert sorted(order) == ['b', 'g', 'r']
        # Only the order changes: the multiset of slices is the same.
        assert _slices(volume) == _slices(reference)
        # The recorded order names the colour of every slice.
        for d, colour in enumerate(order):
            np.testing.assert_array_equal(volume[0, d],
                                          reference[0, 'rgb'.index(colour)])
    assert len(orders) > 1


def test_rgb_to_volume_no_shuffle_leaves_rng(foolbox_images):
    # shuffle_prob=0 must not consume numpy's random state, so adding the
    # VDT to a pipeline does not change the other random transforms.
    set_random_seed(7)
    state = np.random.get_state()[1].copy()
    RGBToVolume()(_load(foolbox_images['cifar10'][3]))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_rgb_to_volume_bad_args():
    # slice_order must be 'rgb' or 'bgr'
    with pytest.raises(ValueError, match='slice_order'):
        RGBToVolume(slice_order='rbg')
    # shuffle_prob above 1
    with pytest.raises(ValueError, match='shuffle_prob'):
        RGBToVolume(shuffle_prob=1.5)
    # shuffle_prob below 0
    with pytest.raises(ValueError, match='shuffle_prob'):
        RGBToVolume(shuffle_prob=-0.1)


def test_rgb_to_volume_rejects_grayscale_file(foolbox_images):
    # A real image loaded as grayscale, (H, W): the error names the shape,
    # the file and the LoadImageFromFile fix.
    item = foolbox_images['imagenet'][0]
    load = TRANSFORMS.build(
        dict(type='LoadImageFromFile', color_type='grayscale'))
    results = load(dict(img_path=item['path']))
    assert results['img'].shape == (512, 512)
    with pytest.raises(ValueError) as excinfo:
        RGBToVolume()(results)
    message = str(excinfo.value)
    assert '(512, 512)' in message
    assert item['path'] in message
    assert "color_type='color'" in message


def test_rgb_to_volume_rejects_one_channel(foolbox_images):
    # (H, W, 1) grayscale with a channel axis
    results = _load(foolbox_images['cifar10'][0])
    results['img'] = results['img'][..., :1]
    with pytest.raises(ValueError, match=r'\(32, 32, 1\)'):
        RGBToVolume()(results)


def test_rgb_to_volume_rejects_rgba(foolbox_images):
    # (H, W, 4) RGBA
    results = _load(foolbox_images['cifar10'][1])
    alpha = np.full((32, 32, 1), 255, dtype=np.uint8)
    results['img'] = np.concatenate([results['img'], alpha], axis=-1)
    with pytest.raises(ValueError, match=r'\(32, 32, 4\)'):
        RGBToVolume()(results)


def test_rgb_to_volume_rejects_volume(foolbox_images):
    # Applying the VDT twice: a (1, 3, H, W) volume is not an image
    results = RGBToVolume()(_load(foolbox_images['cifar10'][2]))
    with pytest.raises(ValueError, match=r'\(1, 3, 32, 32\)'):
        RGBToVolume()(results)


def test_rgb_to_volume_rejects_tensor(foolbox_images):
    # A torch tensor instead of a numpy image
    results = _load(foolbox_images['cifar10'][3])
    results['img'] = torch.from_numpy(results['img'])
    with pytest.raises(ValueError, match='Tensor'):
        RGBToVolume()(results)


def test_rgb_to_volume_missing_img():
    # No 'img' key at all
    with pytest.raises(KeyError, match='img'):
        RGBToVolume()(dict(img_path='missing.png'))


def test_rgb_to_volume_repr():
    assert repr(
        RGBToVolume()) == ("RGBToVolume(slice_order='rgb', shuffle_prob=0.0)")
    assert repr(RGBToVolume(
        'bgr', 0.5)) == ("RGBToVolume(slice_order='bgr', shuffle_prob=0.5)")


def test_rgb_to_volume_registries():
    from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
    for registry in (TRANSFORMS, MMDET_TRANSFORMS, MMPRETRAIN_TRANSFORMS,
                     MMSEG_TRANSFORMS):
        assert registry.get('RGBToVolume') is RGBToVolume


def test_rgb_to_volume_in_mmpretrain_pipeline(foolbox_images):
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    from mmpretrain.structures import DataSample
    pipeline = Compose([
        MMPRETRAIN_TRANSFORMS.build(cfg) for cfg in [
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=(40, 56)),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
            dict(type='RGBToVolume', shuffle_prob=0.),
            dict(type='PackInputs'),
        ]
    ])
    item = foolbox_images['imagenet'][6]
    set_random_seed(0)
    packed = pipeline(dict(img_path=item['path'], gt_label=item['label']))
    inputs, data_sample = packed['inputs'], packed['data_samples']
    # RandomResizedCrop's scale is (h, w): the volume is (1, 3, 40, 56).
    assert inputs.shape == torch.Size([1, 3, 40, 56])
    assert inputs.dtype == torch.uint8
    assert isinstance(data_sample, DataSample)
    # img_shape is left as mmpretrain's crop wrote it, (H, W, 3).
    assert data_sample.img_shape == (40, 56, 3)
    assert data_sample.gt_label.tolist() == [item['label']]

    # The same pipeline without the VDT gives the (3, H, W) BGR image whose
    # R plane is slice 0 of the volume.
    pipeline_2d = copy.deepcopy(pipeline)
    pipeline_2d.transforms.pop(3)
    set_random_seed(0)
    image = pipeline_2d(dict(img_path=item['path'],
                             gt_label=item['label']))['inputs']
    assert image.shape == torch.Size([3, 40, 56])
    assert torch.equal(inputs[0], image.flip(0))
