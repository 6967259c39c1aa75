import numpy as np
import pytest
import torch

from svd_mm.models.utils.connected_components import \
    largest_connected_component


def _two_blobs():
    mask = np.zeros((6, 8, 10), dtype=np.uint8)
    mask[1:4, 1:5, 1:5] = 1  # 48 voxels
    mask[4:6, 6:8, 7:10] = 1  # 12 voxels
    return mask


def test_keeps_the_largest_blob():
    mask = _two_blobs()
    out = largest_connected_component(mask)
    expected = np.zeros_like(mask)
    expected[1:4, 1:5, 1:5] = 1
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_tensor_in_tensor_out():
    mask = torch.from_numpy(_two_blobs()).bool()
    out = largest_connected_component(mask)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bool
    assert out.sum().item() == 48 and out[1:4, 1:5, 1:5].all()


# [connectivity, voxels kept]: the blobs touch at one corner only
@pytest.mark.parametrize('connectivity,kept', [(1, 8), (2, 8), (3, 9),
                                               (None, 9)])
def test_connectivity(connectivity, kept):
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[0:2, 0:2, 0:2] = True  # 8 voxels
    mask[2, 2, 2] = True  # touches (1, 1, 1) at a corner
    out = largest_connected_component(mask, connectivity=connectivity)
    assert out.sum() == kept


def test_empty_and_single():
    empty = np.zeros((3, 4, 5), dtype=np.int64)
    np.testing.assert_array_equal(largest_connected_component(empty), empty)
    single = empty.copy()
    single[1, 2, 3] = 2
    np.testing.assert_array_equal(largest_connected_component(single), single)


def test_bad_arguments():
    # connectivity beyond the number of dimensions
    with pytest.raises(ValueError, match=r'connectivity must be in \[1, 3\]'):
        largest_connected_component(np.zeros((2, 2, 2)), connectivity=4)
    # not an array
    with pytest.raises(TypeError, match='np.ndarray or a torch.Tensor'):
        largest_connected_component([[1, 0]])
