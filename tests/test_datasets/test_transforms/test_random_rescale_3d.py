"""RandomRescale3D: random in-plane (or any-axis) rescaling of a volume and
its labels."""
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.registry import TRANSFORMS

from svd_mm.datasets.transforms import RandomRescale3D

# [kwargs, input (C, D, H, W), output shape]
SHAPE_TABLE = [
    (dict(scale_range=(1.5, 1.5)), (1, 8, 40, 50), (1, 8, 60, 75)),
    (dict(scale_range=(0.5, 0.5)), (2, 3, 33, 20), (2, 3, 16, 10)),
    (dict(scale_range=(2., 2.), axes=(0, )), (1, 3, 5, 7), (1, 6, 5, 7)),
    (dict(scale_range=(0.75, 0.75), axes=(0, 1, 2)), (1, 8, 12, 16),
     (1, 6, 9, 12)),
    (dict(scale_range=(0.01, 0.01), axes=(2, )), (1, 4, 6, 10),
     (1, 4, 6, 1)),  # never below one voxel
    (dict(scale_range=(1., 1.)), (1, 3, 7, 9), (1, 3, 7, 9)),
]


@pytest.mark.parametrize('kwargs, in_shape, out_shape', SHAPE_TABLE)
def test_shapes(kwargs, in_shape, out_shape):
    img = np.random.RandomState(0).randint(0, 255, in_shape).astype(np.uint8)
    seg = (img[0] > 127).astype(np.uint8)
    results = RandomRescale3D(**kwargs)(
        dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map']))
    assert results['img'].shape == out_shape
    assert results['img'].dtype == np.uint8
    assert results['gt_seg_map'].shape == out_shape[1:]
    assert results['img_shape'] == out_shape[1:]
    assert results['img'].flags.c_contiguous


def test_values_and_labels():
    # a linear ramp along W stays a ramp; labels stay labels (incl. 255)
    ramp = np.tile(np.arange(0, 200, 10, dtype=np.float32), (1, 2, 4, 1))
    seg = np.zeros((2, 4, 20), np.uint8)
    seg[:, :, 5:10] = 1
    seg[:, :, 15:] = 255
    results = RandomRescale3D(scale_range=(2., 2.), axes=(2, ))(
        dict(img=ramp, gt_seg_map=seg, seg_fields=['gt_seg_map']))
    out, out_seg = results['img'], results['gt_seg_map']
    assert out.dtype == np.float32 and out.shape == (1, 2, 4, 40)
    # interior of the ramp: slope halves
    np.testing.assert_allclose(np.diff(out[0, 0, 0, 1:-1]), 5., atol=1e-4)
    assert set(np.unique(out_seg)) == {0, 1, 255}
    # nearest-exact doubles each label column
    np.testing.assert_array_equal(out_seg[0, 0], np.repeat(seg[0, 0], 2))
    assert results['rescale_factor'] == (1., 1., 2.)


def test_random_factor_in_range_and_shared():
    np.random.seed(0)
    rescale = RandomRescale3D(scale_range=(0.8, 1.2))
    factors = []
    for _ in range(20):
        results = rescale(dict(img=np.zeros((1, 4, 50, 60), np.uint8)))
        _, fh, fw = results['rescale_factor']
        assert results['rescale_factor'][0] == 1.
        assert fh == fw and 0.8 <= fh <= 1.2
        assert results['img'].shape == (1, 4, round(50 * fh), round(60 * fw))
        factors.append(fh)
    assert len(set(factors)) == 20
    # one factor per axis
    results = RandomRescale3D(
        scale_range=(0.5, 2.), keep_ratio=False)(
            dict(img=np.zeros((1, 4, 50, 60), np.uint8)))
    assert results['rescale_factor'][1] != results['rescale_factor'][2]


def test_pipeline_of_the_lits_config():
    """Coarse crop, rescale, final crop: always the final crop size."""
    pipeline = Compose([
        dict(type='RandomCrop3D', crop_size=(8, 40, 40)),
        dict(type='RandomRescale3D', scale_range=(0.8, 1.2)),
        dict(type='RandomCrop3D', crop_size=(8, 32, 32)),
    ])
    np.random.seed(1)
    for _ in range(5):
        img = np.random.randint(0, 255, (1, 12, 64, 70)).astype(np.uint8)
        results = pipeline(
            dict(img=img, gt_seg_map=img[0] > 100, seg_fields=['gt_seg_map']))
        assert results['img'].shape == (1, 8, 32, 32)
        assert results['gt_seg_map'].shape == (8, 32, 32)


def test_errors_and_repr():
    assert TRANSFORMS.get('RandomRescale3D') is RandomRescale3D
    # low > high
    with pytest.raises(ValueError, match='scale_range'):
        RandomRescale3D(scale_range=(1.2, 0.8))
    # non-positive factor
    with pytest.raises(ValueError, match='scale_range'):
        RandomRescale3D(scale_range=(0., 1.))
    # axis out of (D, H, W)
    with pytest.raises(ValueError, match='axes'):
        RandomRescale3D(axes=(1, 3))
    # repeated axis
    with pytest.raises(ValueError, match='axes'):
        RandomRescale3D(axes=(1, 1))
    # img must be (C, D, H, W)
    with pytest.raises(ValueError, match=r'\(C, D, H, W\)'):
        RandomRescale3D()(dict(img=np.zeros((4, 5, 6))))
    assert repr(RandomRescale3D()) == (
        'RandomRescale3D(scale_range=(0.8, 1.2), axes=(1, 2), '
        'keep_ratio=True)')
