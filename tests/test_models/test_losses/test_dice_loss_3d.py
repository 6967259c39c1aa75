import numpy as np
import pytest
import torch
from mmengine.registry import MODELS, DefaultScope

from svd_mm.models.losses import DiceLoss3D


def _numpy_dice_loss(logits,
                     labels,
                     ignore_index=255,
                     smooth=1e-5,
                     exclude_background=False,
                     batch_dice=False):
    """Soft Dice loss written out with numpy loops."""
    logits = logits.astype(np.float64)
    num_classes = logits.shape[1]
    if num_classes == 1:
        probs = 1 / (1 + np.exp(-logits))
        classes = [(0, 1)]  # (channel, label)
    else:
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs = e / e.sum(1, keepdims=True)
        first = 1 if exclude_background else 0
        classes = [(k, k) for k in range(first, num_classes)]
    groups = [list(range(len(labels)))
              ] if batch_dice else [[n] for n in range(len(labels))]
    dices = []
    for group in groups:
        for channel, label in classes:
            inter = p_sum = t_sum = 0.0
            for n in group:
                valid = labels[n] != ignore_index
                p = probs[n, channel][valid]
                t = (labels[n][valid] == label).astype(np.float64)
                inter += (p * t).sum()
                p_sum += p.sum()
                t_sum += t.sum()
            dices.append((2 * inter + smooth) / (p_sum + t_sum + smooth))
    return 1 - np.mean(dices)


# [logits shape (N, K, *spatial), kwargs]
CASES = [
    [(2, 3, 4, 5, 6), dict()],
    [(2, 3, 4, 5, 6), dict(exclude_background=True)],
    [(3, 2, 3, 7, 5), dict(batch_dice=True)],
    [(2, 1, 4, 5, 6), dict()],
    [(2, 4, 6, 5), dict(smooth=1.0)],  # 2D logits work as well
]


@pytest.mark.parametrize('shape,kwargs', CASES)
def test_dice_loss_matches_numpy(shape, kwargs):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=generator) * 3
    num_labels = max(shape[1], 2)
    labels = torch.randint(
        0, num_labels, (shape[0], ) + shape[2:], generator=generator)
    labels[0, 0] = 255  # an ignored slice
    loss = DiceLoss3D(loss_weight=0.5, **kwargs)(logits, labels)
    expected = _numpy_dice_loss(logits.numpy(), labels.numpy(), **kwargs)
    assert loss.shape == torch.Size([])
    np.testing.assert_allclose(loss.item(), 0.5 * expected, rtol=1e-5)


def test_dice_loss_perfect_and_backward():
    labels = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    labels[:, 1:3, 1:3, 1:3] = 1
    logits = torch.stack([(labels == 0), (labels == 1)], 1).float() * 200 - 100
    assert DiceLoss3D()(logits, labels).item() == pytest.approx(0, abs=1e-6)
    logits = torch.zeros(1, 2, 4, 4, 4, requires_grad=True)
    DiceLoss3D()(logits, labels).backward()
    # raising the foreground logit inside the object lowers the loss
    assert logits.grad[0, 1, 1, 1, 1] < 0 < logits.grad[0, 1, 0, 0, 0]


def test_dice_loss_ignore_index_and_weight():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 2, 3, 4, 5, generator=generator)
    labels = torch.randint(0, 2, (1, 3, 4, 5), generator=generator)
    loss = DiceLoss3D()
    masked = labels.clone()
    masked[0, 0] = 7
    # the ignore_index passed by the decode head overrides the default
    assert torch.allclose(
        loss(logits, masked, ignore_index=7),
        loss(logits[:, :, 1:], labels[:, 1:]))
    # a zero voxel weight is the same as ignoring the voxel
    weight = torch.ones(1, 3, 4, 5)
    weight[0, 0] = 0
    assert torch.allclose(
        loss(logits, labels, weight=weight),
        loss(logits[:, :, 1:], labels[:, 1:]))


def test_dice_loss_bad_inputs():
    loss = DiceLoss3D()
    # labels with a channel axis
    with pytest.raises(
            ValueError, match=r'\(2, 2, 3, 4, 5\) and '
            r'\(2, 1, 3, 4, 5\)'):
        loss(torch.zeros(2, 2, 3, 4, 5), torch.zeros(2, 1, 3, 4, 5).long())
    # a label that is no class
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\)'):
        loss(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 2]]))
    # negative smoothing
    with pytest.raises(ValueError, match='smooth'):
        DiceLoss3D(smooth=-1)


def test_dice_loss_in_mmseg_decode_head_list():
    """Built in the mmseg scope next to mmseg's CrossEntropyLoss."""
    from mmseg.registry import MODELS as SEG_MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        dice = SEG_MODELS.build(dict(type='DiceLoss3D', loss_weight=0.3))
        ce = SEG_MODELS.build(dict(type='CrossEntropyLoss', loss_weight=1.0))
    assert isinstance(dice, DiceLoss3D) and dice.loss_name == 'loss_dice'
    assert isinstance(MODELS.build(dict(type='DiceLoss3D')), DiceLoss3D)
    logits = torch.randn(2, 3, 4, 5, 6)
    labels = torch.randint(0, 3, (2, 4, 5, 6))
    assert torch.isfinite(ce(logits, labels) + dice(logits, labels))
