"""Overlay pictures of real CT with masks and boxes."""
import matplotlib.image as mpimg
import numpy as np
import pytest

from svd_mm.utils.medical_io import Volume, read_volume
from svd_mm.visualization import (WINDOW_PRESETS, plot_slice_boxes,
                                  plot_volume_overlay, resolve_window)
from svd_mm.visualization.overlay import (CLASS_COLORS, GT_COLOR,
                                          reorient_for_display)
from tests.helpers.data_cache import fetch_pyradiomics_ct


@pytest.fixture(scope='module')
def ct():
    """lung1 cut to 16 slices around its lesion, full 512 x 512 planes,
    with the lesion mask."""
    case = fetch_pyradiomics_ct()[0]
    volume = read_volume(case['image'])
    label = read_volume(case['label']).array.astype(np.uint8)
    first = int(np.argwhere(label > 0)[:, 0].mean()) - 8
    affine = volume.affine.copy()
    affine[:3, 3] = volume.dhw_to_ras((first, 0, 0))
    cut = slice(first, first + 16)
    return Volume(volume.array[cut], affine), label[cut]


def _png(path):
    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4), img.shape
    return (img[..., :3] * 255).round().astype(np.int32)


def _count_color(img, color, tol=40):
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).max(-1) < tol).sum())


def test_resolve_window():
    assert resolve_window('lung') == (-1350., 150.,
                                      'lung window C -600 / W 1500')
    assert resolve_window((40, 400))[:2] == (-160., 240.)
    low, high, text = resolve_window(None, np.arange(1001.))
    assert (low, high) == pytest.approx((5., 995.))
    assert 'percentiles' in text
    assert set(WINDOW_PRESETS) >= {'lung', 'liver', 'soft_tissue', 'bone'}
    # an unknown preset
    with pytest.raises(KeyError, match='Unknown window'):
        resolve_window('kidney')
    # a window of zero width
    with pytest.raises(ValueError, match='width > 0'):
        resolve_window((40, 0))
    # percentiles need the image
    with pytest.raises(ValueError, match='needs the image'):
        resolve_window(None)


# RAS affines of differently stored volumes: after reorientation, the axes
# (D, H, W) always point superior, posterior, left
ORIENTATIONS = [
    np.diag([-0.7, -0.7, 5., 1.]),  # DICOM / NRRD (LPS) storage
    np.diag([0.7, 0.7, 5., 1.]),  # RAS storage
    np.diag([0.7, -0.7, -5., 1.]),  # slices stored top-down
    # sagittal acquisition: i -> anterior, j -> inferior, k -> left
    np.array([[0, 0, -2., 0], [0.8, 0, 0, 0], [0, -0.8, 0, 0],
              [0, 0, 0, 1.]]),
]


@pytest.mark.parametrize('affine', ORIENTATIONS)
def test_reorient_for_display(affine):
    shape = (4, 5, 6)
    d, h, w = np.meshgrid(*[np.arange(s) for s in shape], indexing='ij')
    ijk1 = np.stack([w, h, d, np.ones_like(d)], -1).astype(np.float64)
    ras = ijk1 @ affine.T  # world coordinates of every voxel
    perm, flips, spacing = reorient_for_display(affine)
    shown = [np.flip(ras[..., a].transpose(perm), flips) for a in range(3)]
    # D grows superior (+z), H posterior (-y), W left (-x)
    assert (np.diff(shown[2], axis=0) > 0).all()
    assert (np.diff(shown[1], axis=1) < 0).all()
    assert (np.diff(shown[0], axis=2) < 0).all()
    norms = np.linalg.norm(affine[:3, :3], axis=0)[::-1]
    assert spacing == tuple(norms[list(perm)])


@pytest.mark.parametrize('mode', ['contour', 'alpha'])
def test_plot_volume_overlay(ct, tmp_path, mode):
    volume, label = ct
    pred = np.roll(label, 2, axis=2)  # a prediction off by 2 voxels
    out = plot_volume_overlay(
        volume.array,
        volume.affine,
        str(tmp_path / 'sub' / 'overlay.png'),
        pred=pred,
        gt=label,
        mode=mode,
        window='lung',
        class_names=['background', 'lesion'],
        title='lung1')
    img = _png(out)
    # the lesion is small: a second, zoomed row
    assert img.shape[1] > 1000
    if mode == 'contour':
        assert _count_color(img, CLASS_COLORS[0]) > 50  # predicted, red
    else:  # red blended over grey
        assert (img[..., 0] - img[..., 1:].max(-1) > 40).sum() > 50
    assert _count_color(img, GT_COLOR) > 50  # true, green, dashed
    # without masks: one row, and no mask colours
    plain = _png(
        plot_volume_overlay(volume.array, volume.affine,
                            str(tmp_path / 'plain.png'), window='lung'))
    assert plain.shape[0] < img.shape[0]
    assert _count_color(plain, CLASS_COLORS[0]) < 20
    assert _count_color(plain, GT_COLOR) < 20


def test_plot_volume_overlay_index_and_zoom(ct, tmp_path):
    volume, label = ct
    # planes through voxel (0, 10, 10); zoomed; through the lesion
    cases = [dict(zoom=None, index=(0, 10, 10)), dict(zoom=20.),
             dict(zoom=None)]
    one_row, two_rows, through = [
        _png(plot_volume_overlay(volume.array, volume.affine,
                                 str(tmp_path / f'{n}.png'), gt=label, **kw))
        for n, kw in enumerate(cases)
    ]
    assert two_rows.shape[0] > one_row.shape[0] == through.shape[0]
    # the planes through voxel (0, 10, 10) miss the lesion: green only in
    # the legend; the default planes cross it
    assert _count_color(through, GT_COLOR) > _count_color(
        one_row, GT_COLOR) + 50


def test_plot_volume_overlay_errors(ct, tmp_path):
    volume, label = ct
    png = str(tmp_path / 'x.png')
    # the mask must have the image's shape
    with pytest.raises(ValueError, match='pred of shape'):
        plot_volume_overlay(volume.array, volume.affine, png, pred=label[1:])
    # the crossing voxel must be inside
    with pytest.raises(ValueError, match='index must be'):
        plot_volume_overlay(volume.array, volume.affine, png,
                            index=(16, 0, 0))
    # contour or alpha
    with pytest.raises(ValueError, match='mode'):
        plot_volume_overlay(volume.array, volume.affine, png, mode='fill')
    # a PNG path
    with pytest.raises(ValueError, match='.png'):
        plot_volume_overlay(volume.array, volume.affine,
                            str(tmp_path / 'x.jpg'))
    # a volume, not a slice
    with pytest.raises(ValueError, match=r'\(D, H, W\)'):
        plot_volume_overlay(volume.array[0], volume.affine, png)


def test_plot_slice_boxes(ct, tmp_path):
    volume, label = ct
    k = int(np.argmax(label.sum((1, 2))))
    ys, xs = np.nonzero(label[k])
    gt_box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    boxes = np.array([[xs.min() - 4, ys.min() - 4, xs.max() + 5,
                       ys.max() + 5], [100, 100, 160, 150]])
    kwargs = dict(
        boxes=boxes,
        scores=[0.9, 0.3],
        labels=[0, 0],
        gt_boxes=[gt_box],
        class_names=['lesion'],
        window='lung')
    both = _png(
        plot_slice_boxes(volume.array[k], volume.affine,
                         str(tmp_path / 'both.png'), score_thr=0.2,
                         **kwargs))
    best = _png(
        plot_slice_boxes(volume.array[k], volume.affine,
                         str(tmp_path / 'best.png'), score_thr=0.5,
                         **kwargs))
    assert both.shape == best.shape
    assert _count_color(both, CLASS_COLORS[0]) > _count_color(
        best, CLASS_COLORS[0]) > 50
    assert _count_color(best, GT_COLOR) > 20
    # one score per box
    with pytest.raises(ValueError, match='one row per box'):
        plot_slice_boxes(volume.array[k], volume.affine,
                         str(tmp_path / 'x.png'), boxes=boxes, scores=[0.1])
    # a slice, not a volume
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        plot_slice_boxes(volume.array, volume.affine, str(tmp_path / 'x.png'))
