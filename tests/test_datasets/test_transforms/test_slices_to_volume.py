import numpy as np
import pytest
from mmengine.registry import TRANSFORMS

from svd_mm.datasets.transforms import SlicesToVolume


def test_slices_to_volume_registry():
    # generic: in the mmengine root registry
    assert TRANSFORMS.get('SlicesToVolume') is SlicesToVolume


# [(H, W, D) stack shape, volume shape]
SHAPE_CASES = [
    [(32, 48, 9), (1, 9, 32, 48)],
    [(48, 32, 3), (1, 3, 48, 32)],
    [(7, 5, 1), (1, 1, 7, 5)],
    [(7, 5), (1, 1, 7, 5)],  # a single slice
]


@pytest.mark.parametrize('shape,volume_shape', SHAPE_CASES)
@pytest.mark.parametrize('dtype', [np.float32, np.uint8])
def test_slices_to_volume_shapes(shape, volume_shape, dtype):
    stack = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    out = SlicesToVolume()(dict(img=stack.copy()))
    volume = out['img']
    assert volume.shape == volume_shape
    assert volume.dtype == dtype
    assert volume.flags['C_CONTIGUOUS']
    assert out['volume_shape'] == volume_shape
    assert out['slice_flip'] is False
    stack3 = stack if stack.ndim == 3 else stack[..., None]
    for d in range(volume_shape[1]):
        assert np.array_equal(volume[0, d], stack3[..., d])


def test_slices_to_volume_flip():
    stack = np.arange(4 * 5 * 9, dtype=np.float32).reshape(4, 5, 9)
    positions = np.arange(9, dtype=np.float64) + 0.5
    out = SlicesToVolume(flip_prob=1.)(
        dict(img=stack, slice_positions=positions.copy()))
    assert out['slice_flip'] is True
    assert np.array_equal(out['img'][0], stack.transpose(2, 0, 1)[::-1])
    assert out['slice_positions'].tolist() == positions[::-1].tolist()
    # flip_prob=0.5 flips about half of the time
    np.random.seed(0)
    flips = [
        SlicesToVolume(flip_prob=0.5)(dict(img=stack))['slice_flip']
        for _ in range(200)
    ]
    assert 70 < sum(flips) < 130


def test_slices_to_volume_bad_inputs():
    # a 4-D image is already a volume
    with pytest.raises(ValueError, match=r'\(H, W, D\) stack'):
        SlicesToVolume()(dict(img=np.zeros((1, 9, 4, 4)), img_path='a.png'))
    # probability out of [0, 1]
    with pytest.raises(ValueError, match='flip_prob'):
        SlicesToVolume(flip_prob=1.5)
    assert repr(SlicesToVolume(0.5)) == 'SlicesToVolume(flip_prob=0.5)'
