import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from svd_mm.structures import VoxelData

# [value shape, stored shape, VoxelData.shape]
SHAPE_CASES = [
    [(1, 4, 6, 8), (1, 4, 6, 8), (4, 6, 8)],
    [(3, 5, 7, 2), (3, 5, 7, 2), (5, 7, 2)],
    [(5, 7, 2), (1, 5, 7, 2), (5, 7, 2)],
]


@pytest.mark.parametrize('value_shape,stored_shape,shape', SHAPE_CASES)
@pytest.mark.parametrize('as_numpy', [False, True])
def test_voxel_data_shapes(value_shape, stored_shape, shape, as_numpy):
    value = torch.rand(value_shape)
    if as_numpy:
        value = value.numpy()
    voxel_data = VoxelData(metainfo=dict(case_id='a'), data=value)
    assert tuple(voxel_data.data.shape) == stored_shape
    assert voxel_data.shape == shape
    assert type(voxel_data.data) is type(value)
    assert voxel_data.case_id == 'a'


def test_voxel_data_is_accepted_by_seg_data_sample():
    voxel_data = VoxelData(data=torch.zeros(1, 2, 3, 4, dtype=torch.long))
    # SegDataSample checks isinstance(value, PixelData)
    assert isinstance(voxel_data, PixelData)
    sample = SegDataSample(gt_sem_seg=voxel_data)
    assert sample.gt_sem_seg.shape == (2, 3, 4)
    # to_dict keeps the nested data, as mmengine's Evaluator uses it
    assert sample.to_dict()['gt_sem_seg']['data'].shape == torch.Size(
        [1, 2, 3, 4])
    # tensor methods keep the class
    assert type(voxel_data.clone()) is VoxelData
    assert type(voxel_data.cpu()) is VoxelData
    assert isinstance(voxel_data.numpy().data, np.ndarray)


def test_voxel_data_fields_share_dhw():
    voxel_data = VoxelData(
        data=torch.zeros(1, 4, 6, 8), logits=torch.zeros(3, 4, 6, 8))
    assert set(voxel_data.keys()) == {'data', 'logits'}
    # replacing the only field may change the shape
    single = VoxelData(data=torch.zeros(1, 4, 6, 8))
    single.data = torch.zeros(1, 4, 6, 10)
    assert single.shape == (4, 6, 10)
    # another field must keep (D, H, W)
    with pytest.raises(ValueError, match=r'does not match'):
        voxel_data.other = torch.zeros(1, 4, 6, 9)


def test_voxel_data_bad_values():
    voxel_data = VoxelData()
    assert voxel_data.shape is None
    # a 2-D map is a PixelData, not a VoxelData
    with pytest.raises(ValueError, match=r'\(C, D, H, W\) or \(D, H, W\)'):
        voxel_data.data = torch.zeros(4, 6)
    # 5-D (a batch) is not one map
    with pytest.raises(ValueError, match=r'shape \(1, 1, 4, 6, 8\)'):
        voxel_data.data = torch.zeros(1, 1, 4, 6, 8)
    # only arrays and tensors
    with pytest.raises(TypeError, match='torch.Tensor or np.ndarray'):
        voxel_data.data = [[[0]]]
    # the private field sets are immutable
    with pytest.raises(AttributeError, match='immutable'):
        voxel_data._data_fields = set()


# [index, shape after indexing]
INDEX_CASES = [
    [(slice(1, 3), ), (2, 6, 8)],
    [(slice(None), slice(2, 5)), (4, 3, 8)],
    [(1, slice(None), 7), (1, 6, 1)],
    [(-1, -6, slice(0, 8, 2)), (1, 1, 4)],
    [2, (1, 6, 8)],
]


@pytest.mark.parametrize('index,shape', INDEX_CASES)
def test_voxel_data_indexing(index, shape):
    data = torch.arange(4 * 6 * 8).view(1, 4, 6, 8)
    logits = torch.rand(3, 4, 6, 8)
    voxel_data = VoxelData(
        metainfo=dict(case_id='b'), data=data, logits=logits)
    cropped = voxel_data[index]
    assert cropped.shape == shape
    assert cropped.case_id == 'b'
    assert cropped.logits.shape == torch.Size((3, ) + shape)
    # the same voxels as indexing the tensor with the axis kept
    full = index if isinstance(index, tuple) else (index, )
    as_slices = tuple(
        slice(i % s, i % s + 1) if isinstance(i, int) else i
        for i, s in zip(full, (4, 6, 8)))
    assert torch.equal(cropped.data, data[(slice(None), ) + as_slices])


def test_voxel_data_bad_indices():
    voxel_data = VoxelData(data=torch.zeros(1, 4, 6, 8))
    # (D, H, W) only, no channel index
    with pytest.raises(IndexError, match='along \\(D, H, W\\) only'):
        voxel_data[0, 0, 0, 0]
    # out of range int
    with pytest.raises(IndexError, match='axis D of size 4'):
        voxel_data[4]
    # no fancy indexing
    with pytest.raises(TypeError, match='int or slice'):
        voxel_data[[0, 1]]
    # nothing to index
    with pytest.raises(IndexError, match='empty'):
        VoxelData()[0]
