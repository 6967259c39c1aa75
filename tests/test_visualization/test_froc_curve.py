import cv2
import numpy as np
import pytest

from svd_mm.visualization import plot_froc, read_froc_curve

CURVE = ([0., 0.25, 0.5, 1., 2., 3.5], [0.3, 0.45, 0.6, 0.7, 0.8, 0.82])


def _read_png(path):
    img = cv2.imread(str(path))
    assert img is not None, f'{path} is not a readable image'
    return img


# [kwargs, (height, width) of the PNG]
PLOT_CASES = [
    [dict(), (450, 600)],
    [dict(dpi=50), (225, 300)],
    [dict(log_x=True, max_fp=16.), (450, 600)],
    [dict(fp_rates=(0.125, 0.25, 0.5, 1, 2, 4, 8), title='DeepLesion'),
     (450, 600)],
]


@pytest.mark.parametrize('kwargs,hw', PLOT_CASES)
def test_plot_froc_writes_png(tmp_path, kwargs, hw):
    out = tmp_path / 'sub' / 'froc.png'  # the folder is created
    assert plot_froc(CURVE, str(out), **kwargs) == str(out)
    img = _read_png(out)
    assert img.shape == hw + (3, )
    assert img.std() > 10  # axes, curve and text, not a blank canvas


def test_plot_froc_several_curves(tmp_path):
    curves = {
        '3DCE': CURVE,
        'SVD-Net': ([0., 0.5, 1., 2., 4.], [0.5, 0.7, 0.8, 0.86, 0.9]),
    }
    single = _read_png(plot_froc(CURVE, str(tmp_path / 'one.png')))
    both = _read_png(plot_froc(curves, str(tmp_path / 'two.png')))
    assert both.shape == single.shape
    assert not np.array_equal(both, single)


def test_plot_froc_does_not_touch_pyplot(tmp_path):
    import matplotlib
    backend = matplotlib.get_backend()
    plot_froc(CURVE, str(tmp_path / 'a.png'))
    assert matplotlib.get_backend() == backend


def test_plot_froc_bad_inputs(tmp_path):
    png = str(tmp_path / 'x.png')
    # not a PNG path
    with pytest.raises(ValueError, match='.png'):
        plot_froc(CURVE, str(tmp_path / 'x.pdf'))
    # no curve
    with pytest.raises(ValueError, match='at least one curve'):
        plot_froc({}, png)
    # as many FP rates as sensitivities
    with pytest.raises(ValueError, match='as many'):
        plot_froc(([0., 1.], [0.5]), png)
    # FPs per image must not decrease
    with pytest.raises(ValueError, match='non-decreasing'):
        plot_froc(([0., 2., 1.], [0.1, 0.2, 0.3]), png)


# [curve (fps_per_image, sensitivity), rates, sensitivities]
READ_CASES = [
    # a polyline: linear interpolation, flat at both ends
    [([0., 1., 2.], [.2, .6, .7]), [0, .5, 1, 1.5, 2, 9],
     [.2, .4, .6, .65, .7, .7]],
    # a step curve: at a shared FP rate the first point, flat in between
    [([0., 1., 1., 2., 2.], [.2, .2, .6, .6, .9]), [0, .5, 1, 1.5, 2, 3],
     [.2, .2, .2, .6, .6, .9]],
    # a curve that starts after 0 FPs
    [([.5, 1.], [.3, .5]), [0, .5, .75], [.3, .3, .4]],
    # a single point
    [([0.], [.8]), [0, 4], [.8, .8]],
]


@pytest.mark.parametrize('curve,rates,expected', READ_CASES)
def test_read_froc_curve(curve, rates, expected):
    out = read_froc_curve(*curve, rates)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert read_froc_curve(*curve, rates[1]).shape == ()


def test_read_froc_curve_bad_inputs():
    # as many FP rates as sensitivities
    with pytest.raises(ValueError, match='as many'):
        read_froc_curve([0., 1.], [.5], 1)
    # no point
    with pytest.raises(ValueError, match='at least one'):
        read_froc_curve([], [], 1)
    # FPs per image must not decrease
    with pytest.raises(ValueError, match='non-decreasing'):
        read_froc_curve([0., 2., 1.], [.1, .2, .3], 1)
