import numpy as np
import pytest
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS, DefaultScope

import svd_mm  # noqa: F401
from svd_mm.datasets import FractionDataset
from tests.helpers.data_cache import layout_classification_set

FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


class ToyDataset(BaseDataset):
    """``num`` samples; label 1 for every ``pos_every``-th one, else 0."""
    METAINFO = dict(classes=('benign', 'malignant'))

    def __init__(self, num=50, pos_every=5, **kwargs):
        self.num = num
        self.pos_every = pos_every
        # serialising calls gc.collect(), slow in a big test process
        kwargs.setdefault('serialize_data', False)
        super().__init__(**kwargs)

    def load_data_list(self):
        return [
            dict(case=f'case{i:03d}', gt_label=int(i % self.pos_every == 0))
            for i in range(self.num)
        ]

    def get_cat_ids(self, idx):
        return [self.get_data_info(idx)['gt_label']]


@pytest.fixture(scope='module')
def foolbox_cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp('foolbox_cifar10')
    layout_classification_set(str(root), splits=('cifar10', ))
    return str(root)


@pytest.mark.parametrize('num', [50, 12, 7])
def test_fractions_are_nested_and_sized(num):
    subsets = [
        FractionDataset(ToyDataset(num=num), fraction=f, seed=0)
        for f in FRACTIONS
    ]
    sizes = [len(s) for s in subsets]
    assert sizes == [FractionDataset.num_kept(num, f) for f in FRACTIONS]
    assert sizes == {
        50: [10, 20, 30, 40, 50],
        12: [2, 5, 7, 10, 12],
        7: [1, 3, 4, 6, 7]
    }[num]
    for small, large in zip(subsets, subsets[1:]):
        assert set(small.indices) < set(large.indices)
    # the kept samples, in the order of the dataset
    assert subsets[-1].indices == list(range(num))
    for subset in subsets:
        assert subset.indices == sorted(subset.indices)
        cases = [subset[i]['case'] for i in range(len(subset))]
        assert cases == [f'case{i:03d}' for i in subset.indices]


def test_same_seed_same_subset_other_seed_other_subset():
    a = FractionDataset(ToyDataset(), fraction=0.4, seed=3)
    b = FractionDataset(ToyDataset(), fraction=0.4, seed=3)
    c = FractionDataset(ToyDataset(), fraction=0.4, seed=4)
    assert a.indices == b.indices
    assert a.indices != c.indices
    # the permutation of numpy's default_rng(seed), first 20
    expected = sorted(np.random.default_rng(3).permutation(50)[:20])
    assert a.indices == [int(i) for i in expected]


def test_stratified_fractions_keep_the_class_ratio():
    subsets = [
        FractionDataset(
            ToyDataset(), fraction=f, seed=1, stratify_key='gt_label')
        for f in FRACTIONS
    ]
    for fraction, subset in zip(FRACTIONS, subsets):
        labels = [subset.get_cat_ids(i)[0] for i in range(len(subset))]
        # 10 positives and 40 negatives
        assert labels.count(1) == round(10 * fraction)
        assert labels.count(0) == round(40 * fraction)
    for small, large in zip(subsets, subsets[1:]):
        assert set(small.indices) < set(large.indices)


def test_wrapper_interface():
    subset = FractionDataset(ToyDataset(), fraction=0.2, seed=0)
    assert subset.metainfo == dict(classes=('benign', 'malignant'))
    first = subset.indices[0]
    assert subset.get_data_info(0) == ToyDataset().get_data_info(first)
    assert 'kept=10/50' in repr(subset)
    lazy = FractionDataset(
        dict(type=ToyDataset), fraction=0.2, seed=0, lazy_init=True)
    assert not lazy._fully_initialized
    assert len(lazy) == 10
    assert lazy.indices == subset.indices


def test_built_with_mmpretrain_dataset_from_registry(foolbox_cifar):
    """dict(type='FractionDataset', dataset=...) in an mmpretrain config."""
    dataset = dict(
        type='CustomDataset',
        data_root=foolbox_cifar,
        ann_file='meta/train.txt',
        data_prefix='images',
        with_label=True,
        pipeline=[])
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS
        subset = MMPRETRAIN_DATASETS.build(
            dict(type='FractionDataset', dataset=dataset, fraction=0.4))
        full = DATASETS.build(dataset)
    assert len(full) == 20
    assert len(subset) == 8
    assert subset.metainfo == full.metainfo
    kept = [subset[i]['img_path'] for i in range(len(subset))]
    assert kept == [full[i]['img_path'] for i in subset.indices]


def test_bad_arguments():
    # a fraction of 0 keeps nothing
    with pytest.raises(ValueError, match=r'fraction must be a number in'):
        FractionDataset(ToyDataset(), fraction=0)
    # percentages are not fractions
    with pytest.raises(ValueError, match=r'in \(0, 1\], but got 40'):
        FractionDataset(ToyDataset(), fraction=40)
    # a seed must be an int
    with pytest.raises(TypeError, match='seed must be an int'):
        FractionDataset(ToyDataset(), fraction=0.2, seed='0')
    # not a dataset
    with pytest.raises(TypeError, match='BaseDataset or a config dict'):
        FractionDataset([1, 2, 3], fraction=0.2)
    # too few samples for the fraction
    with pytest.raises(ValueError, match='keeps no sample'):
        FractionDataset(ToyDataset(num=2), fraction=0.2)
    # an unknown stratification key
    with pytest.raises(KeyError, match="'label' is not in the data info"):
        FractionDataset(ToyDataset(), fraction=0.2, stratify_key='label')


def test_lazy_first_item_initialises_silently():
    """Indexing a lazy subset initialises it without mmengine's
    force_full_init warning (printed once per dataloader worker)."""
    from unittest import mock

    import mmengine.dataset.base_dataset as base_dataset
    subset = FractionDataset(ToyDataset(), fraction=0.2, seed=0)
    lazy = FractionDataset(
        dict(type=ToyDataset), fraction=0.2, seed=0, lazy_init=True)
    with mock.patch.object(base_dataset, 'print_log') as log:
        item = lazy[0]
    log.assert_not_called()
    assert lazy._fully_initialized
    assert item == subset[0]
