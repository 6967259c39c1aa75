"""Benchmark: 3D sliding-window inference, svd_mm's path against MONAI's
and against svd_mm's former own implementation.

The same model, a real :class:`~svd_mm.models.segmentors.EncoderDecoder3D`
built from the LiTS config (seed 0, or ``--checkpoint``) and trained for
``--train-steps`` Adam steps on windows of the same real volume and its
lesion mask (its own Dice + CE loss: a trained model, not random weights,
so the compared logits have a trained model's range), runs over the same
real volume with three methods:

- ``svd_mm``: ``EncoderDecoder3D.slide_inference`` (``test_cfg`` mode
  ``'slide'``, ``crop_size``, ``stride``, ``batch_windows``, ``blend``),
  which delegates to MONAI's function: this row measures svd_mm's mapping
  of ``test_cfg`` onto MONAI's call;
- ``own``: svd_mm's former own implementation (before it delegated to
  MONAI), kept in ``benchmarks/reference_slide.py``: per-axis window
  weights, in-place blending and division, no full-size weight map;
- ``monai``: ``monai.inferers.sliding_window_inference`` called directly
  with the same window (``roi_size``), ``overlap = 1 - stride / roi`` per
  axis (the same window origins: 0, stride, 2 stride, ... and one aligned
  to the end), ``sw_batch_size = batch_windows``, ``mode`` = the blend,
  padding with the data preprocessor's ``pad_value``.

All three call the network ``EncoderDecoder3D.encode_decode``. Speed and
peak memory are reported as factors against the direct MONAI call
(``speed x`` = MONAI time / method time, ``leaner x`` = MONAI peak /
method peak; > 1: better than MONAI), with each output's max |diff| to
MONAI's.

Blends: ``constant`` (plain mean of the overlapping windows) and
``gaussian``. The Gaussians differ slightly by construction: svd_mm
(both ``svd_mm`` and ``own``) centres its exact Gaussian (sigma = 0.125 x
window) at the window centre ``(n - 1) / 2``, MONAI filters a delta at
``n // 2`` with a discretised, truncated Gaussian kernel.
``gaussian (same map)`` passes svd_mm's weights to MONAI as
``roi_weight_map``, so that only the blending code differs and the
outputs must agree to float precision.

The volume: the real ``lung2`` chest CT of the pyradiomics sdist, prepared
as LiTS (HU window [-200, 250] -> uint8, 1 mm slices: 301 slices) by the
functions of :mod:`svd_mm.utils.volume_io`, cut to ``--slices`` slices and
``--size`` pixels in-plane around its lesion.

Time: median over ``--repeat`` runs after one warm-up, the rows timed
round-robin so that a change of machine load hits all rows alike. Peak
memory: on GPU ``torch.cuda.max_memory_allocated`` above the memory before
the call; on CPU the peak resident set size (VmHWM, reset through
``/proc/self/clear_refs``) above the RSS before the call, in a fresh
subprocess per row. Then the same with a stand-in network that costs next
to nothing (``machinery only``, ``--overhead-repeat`` runs; alone with
``--machinery-only``): the sliding-window code's own time and memory. The
script exits with status 1 if an output of ``svd_mm`` or ``own`` differs
from MONAI's by more than ``--atol`` (relative to the logit scale) in
``constant`` or ``gaussian (same map)``.

Examples::

    # CPU, LiTS size: a 128x512x512 volume, the config's windows
    # (32x256x256 / 12x128x128), a narrow model
    python benchmarks/sliding_window.py --device cpu --width 4 \\
        --slices 128 --size 512 --rows constant --repeat 1 \\
        --overhead-repeat 0
    # the sliding-window code alone at LiTS size (minutes on 2 cores)
    python benchmarks/sliding_window.py --device cpu --width 4 \\
        --slices 128 --size 512 --machinery-only --overhead-repeat 5
    # GPU: the LiTS model (width 64)
    python benchmarks/sliding_window.py --device cuda --slices 128 --size 512
"""
import argparse
import contextlib
import copy
import json
import logging
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # tests.helpers of this checkout
from tests.helpers.process_memory import peak_rss_above  # noqa: E402
from tests.helpers.tools import load_script  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'lits',
                  'unet3d_r3d18-scratch_8xb2-500e_lits-32x256x256.py')
ROWS = ('constant', 'gaussian', 'gaussian (same map)')
METHODS = ('svd_mm', 'own', 'monai')
# svd_mm's former own sliding window: a benchmark reference no config uses
REFERENCE = load_script(osp.join(osp.dirname(osp.abspath(__file__)),
                                 'reference_slide.py'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='svd_mm vs MONAI 3D sliding-window inference')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument(
        '--checkpoint', help='weights (default: seed 0, then trained)')
    parser.add_argument(
        '--train-steps',
        type=int,
        default=20,
        help='Adam steps on windows of the volume before timing (0: none)')
    parser.add_argument(
        '--width',
        type=int,
        help='backbone base_channels (default: that of the config)')
    parser.add_argument(
        '--roi', type=int, nargs=3, help='window (D, H, W) (default: config)')
    parser.add_argument(
        '--stride',
        type=int,
        nargs=3,
        help='window stride (D, H, W) (default: config)')
    parser.add_argument('--batch-windows', type=int, default=4)
    parser.add_argument('--slices', type=int, default=64)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--rows', nargs='+', default=list(ROWS))
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument(
        '--overhead-repeat',
        type=int,
        default=7,
        help='runs of the machinery-only timing (cheap predictor; 0: skip)')
    parser.add_argument(
        '--machinery-only',
        action='store_true',
        help='measure only with the cheap predictor (no training, no '
        'network rows)')
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build_model(args):
    """The EncoderDecoder3D of the config (optionally narrowed)."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import svd_mm  # noqa: F401

    MMLogger.get_current_instance().setLevel(logging.WARNING)
    cfg = Config.fromfile(args.config)
    model_cfg = copy.deepcopy(cfg.model)
    if args.width:
        w = args.width
        model_cfg.backbone.base_channels = w
        model_cfg.decode_head.in_channels = tuple(
            w * m for m in (1, 1, 2, 4, 8))
        model_cfg.decode_head.channels = w
    test_cfg = model_cfg.test_cfg
    if args.roi:
        test_cfg.crop_size = tuple(args.roi)
    if args.stride:
        test_cfg.stride = tuple(args.stride)
    test_cfg.batch_windows = args.batch_windows
    test_cfg.keep_largest_component = False
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    return model.to(args.device).eval()


def real_volume(slices: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(1, D, H, W) uint8 image and (D, H, W) 0/1 lesion mask: lung2
    prepared as LiTS, cut around its lesion."""
    from svd_mm.datasets.transforms import LoadVolumeNifti
    from tests.helpers.lits_layout import build_lits_layout_from_ct

    with tempfile.TemporaryDirectory() as tmp:
        cases = build_lits_layout_from_ct(
            tmp, in_plane_size=size, slice_margin=1000)['cases']
        case = [c for c in cases if c['source'] == 'lung2'][0]
        results = LoadVolumeNifti(
            with_seg=True, preprocess=dict(spacing_z=1.0))(
                dict(img_path=case['image'], seg_map_path=case['label']))
    img, seg = results['img'], results['gt_seg_map']
    centre = int(np.nonzero(seg.any((1, 2)))[0].mean())
    start = int(np.clip(centre - slices // 2, 0, max(img.shape[1] - slices,
                                                     0)))
    return (np.ascontiguousarray(img[:, start:start + slices]),
            np.ascontiguousarray(seg[start:start + slices]))


def train_briefly(model, inputs: torch.Tensor, seg: np.ndarray, steps: int,
                  seed: int = 0) -> Tuple[float, float]:
    """Train ``model`` in place for ``steps`` Adam steps (lr 1e-3) on
    windows (the test window size) of ``inputs`` (1, 1, D, H, W, already
    normalised) and ``seg`` (D, H, W), every other one centred on a random
    lesion voxel, the others anywhere.

    Returns:
        tuple[float, float]: The loss (the model's own, in eval mode) on the
        window centred on the lesion, before and after the training.
    """
    from mmseg.structures import SegDataSample

    from svd_mm.structures import VoxelData

    roi = tuple(model.test_cfg['crop_size'])
    size = tuple(inputs.shape[2:])
    if any(r > s for r, s in zip(roi, size)):
        raise ValueError(f'window {roi} larger than the volume {size}')
    rng = np.random.default_rng(seed)
    lesion = np.argwhere(seg > 0)
    label = torch.from_numpy(seg.astype(np.int64)).to(inputs.device)

    def window_at(centre):
        return tuple(
            slice(o, o + r) for o, r in zip([
                int(np.clip(c - r // 2, 0, s - r))
                for c, r, s in zip(centre, roi, size)
            ], roi))

    def loss_on(window):
        sample = SegDataSample(metainfo=dict(img_shape=roi, ori_shape=roi))
        sample.gt_sem_seg = VoxelData(data=label[window][None])
        losses = model.loss(inputs[(slice(None), slice(None)) + window],
                            [sample])
        return sum(v for k, v in losses.items() if 'loss' in k)

    def eval_loss(window):
        model.eval()
        with torch.no_grad():
            return float(loss_on(window))

    centre = lesion.mean(0).round().astype(int) if len(lesion) else [
        s // 2 for s in size
    ]
    probe = window_at(centre)
    before = eval_loss(probe)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(steps):
        if step % 2 == 0 and len(lesion):
            window = window_at(lesion[rng.integers(len(lesion))])
        else:
            window = window_at([
                int(rng.integers(r // 2, s - r + r // 2 + 1))
                for r, s in zip(roi, size)
            ])
        loss = loss_on(window)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, eval_loss(probe)


def make_runner(model, name, inputs):
    """A function running one row (method + blend) on ``inputs``.

    Methods: ``svd_mm`` (``EncoderDecoder3D.slide_inference``, which calls
    MONAI), ``own`` (svd_mm's former implementation,
    ``benchmarks/reference_slide.py``) and ``monai`` (the direct call).
    The network is looked up on ``model`` at each call, so that
    :func:`stand_in` can swap it.
    """
    from monai.inferers import sliding_window_inference

    method, blend = name.split(':')
    base_blend = 'gaussian' if blend.startswith('gaussian') else 'constant'
    test_cfg = dict(model.test_cfg, blend=base_blend)
    roi = tuple(test_cfg['crop_size'])
    stride = tuple(test_cfg['stride'])
    sigma_scale = test_cfg.get('sigma_scale', 0.125)
    pad_value = float(model.data_preprocessor.pad_value)
    metas = [dict(ori_shape=tuple(inputs.shape[2:]))]

    def predictor(windows):
        return model.encode_decode(windows, metas * windows.shape[0])

    if method == 'svd_mm':

        def run():
            model.test_cfg = test_cfg
            return model.slide_inference(inputs, metas)

        return run
    if method == 'own':

        def run():
            return REFERENCE.slide_inference(
                inputs,
                predictor,
                roi,
                stride,
                num_classes=model.out_channels,
                batch_windows=test_cfg['batch_windows'],
                blend=base_blend,
                sigma_scale=sigma_scale,
                pad_value=pad_value)

        return run

    weight_map = None
    if blend == 'gaussian (same map)':
        weight_map = model.gaussian_weight(roi, sigma_scale, inputs.device,
                                           inputs.dtype)[None, None]

    def run():
        return sliding_window_inference(
            inputs,
            roi_size=roi,
            sw_batch_size=test_cfg['batch_windows'],
            predictor=predictor,
            overlap=[1 - s / r for s, r in zip(stride, roi)],
            mode=base_blend,
            sigma_scale=sigma_scale,
            padding_mode='constant',
            cval=pad_value,
            roi_weight_map=weight_map)

    return run


def cpu_peak_worker(spec_path: str) -> None:
    """Fresh process: peak RSS of one row above the RSS before it."""
    spec = torch.load(spec_path, weights_only=True)
    args = argparse.Namespace(**spec['args'])
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args)
    model.load_state_dict(spec['state_dict'])
    inputs = spec['inputs']
    if spec['cheap']:
        model.encode_decode = cheap_predictor(model.out_channels)
    run = make_runner(model, spec['row'], inputs)
    with torch.no_grad():
        # warm up the conv kernels on one window (not the whole row)
        roi = tuple(model.test_cfg['crop_size'])
        model.encode_decode(inputs[:, :, :roi[0], :roi[1], :roi[2]].clone(),
                            [dict()])
        with peak_rss_above() as memory:
            out = run()
            del out
    print(json.dumps(memory))


def measure_cpu_peak(args, model, inputs, row, tmp, cheap=False):
    """Peak memory of one row in a fresh subprocess (``cheap``: with
    :func:`cheap_predictor` in place of the network)."""
    spec_path = osp.join(tmp, 'spec.pt')
    spec_args = {k: v for k, v in vars(args).items() if k != 'worker'}
    torch.save(
        dict(
            args=spec_args,
            state_dict=model.state_dict(),
            inputs=inputs,
            row=row,
            cheap=cheap), spec_path)
    env = dict(os.environ)
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    proc = subprocess.run(
        [sys.executable, osp.abspath(__file__), '--worker', spec_path],
        capture_output=True,
        text=True,
        env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'memory worker for {row} failed:\n'
                           f'{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_cuda_peak(run):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        out = run()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del out
    return dict(peak_mib=(peak - base) / 2**20, method='max_memory_allocated')


def cheap_predictor(num_channels: int):
    """A stand-in network that costs next to nothing: the window repeated
    ``num_channels`` times, doubled. Timing both implementations with it
    measures their own work (window gathering, blending, normalisation)."""

    def predict(windows, batch_img_metas):
        return windows.expand(-1, num_channels, -1, -1, -1) * 2.0

    return predict


@contextlib.contextmanager
def stand_in(model, cheap: bool = True):
    """Within the block, ``model.encode_decode`` is :func:`cheap_predictor`
    (if ``cheap``); afterwards the class's method again."""
    if not cheap:
        yield model
        return
    model.encode_decode = cheap_predictor(model.out_channels)
    try:
        yield model
    finally:
        del model.encode_decode  # back to the class's method


def _sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _time_rows(runners, names, repeat, device):
    """Seconds of each of ``repeat`` runs of each row, the rows
    interleaved so that a change of machine load hits all of them."""
    times = {n: [] for n in names}
    for _ in range(repeat):
        for name in names:
            _sync(device)
            start = time.perf_counter()
            runners[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def measure_rows(args, model, inputs, names, repeat, cheap=False):
    """Outputs, median seconds and peak memory of each row.

    Args:
        args (argparse.Namespace): The script's arguments.
        model (EncoderDecoder3D): The model.
        inputs (Tensor): (1, 1, D, H, W) normalised volume.
        names (list[str]): Rows ``'method:blend'``.
        repeat (int): Timed runs of each row after one warm-up run (whose
            outputs are returned).
        cheap (bool): Whether :func:`cheap_predictor` replaces the network
            (the machinery-only measurement).

    Returns:
        tuple[dict, dict, dict]: Per row the output (on the CPU), the median
        seconds and the peak-memory record.
    """
    runners = {n: make_runner(model, n, inputs) for n in names}
    with stand_in(model, cheap), torch.no_grad():
        outputs = {n: runners[n]().cpu() for n in names}  # warm-up
        times = _time_rows(runners, names, repeat, args.device)
        if str(args.device).startswith('cuda'):
            peaks = {n: measure_cuda_peak(runners[n]) for n in names}
    if not str(args.device).startswith('cuda'):
        with tempfile.TemporaryDirectory() as tmp:
            peaks = {
                n: measure_cpu_peak(args, model, inputs.cpu(), n, tmp, cheap)
                for n in names
            }
    times = {n: statistics.median(t) for n, t in times.items()}
    return outputs, times, peaks


def summarise(rows, outputs, times, peaks, atol):
    """Per blend: each method's seconds, peak, speed and memory factors
    against the direct MONAI call, and its max |diff| to MONAI's output.

    Returns:
        tuple[list[dict], bool]: The results, and whether an output that
        must equal MONAI's (``constant``, ``gaussian (same map)``) differs
        by more than ``atol`` times the logit scale (at least 1).
    """
    results, failed = [], False
    for row in rows:
        ref = outputs[f'monai:{row}']
        scale = ref.abs().max().item()
        result = dict(
            blend=row,
            logit_scale=scale,
            must_match=row != 'gaussian',
            memory_method=peaks[f'monai:{row}']['method'])
        for method in METHODS:
            name = f'{method}:{row}'
            diff = (outputs[name] - ref).abs().max().item()
            peak = peaks[name]['peak_mib']
            result.update({
                f'{method}_s': times[name],
                f'{method}_peak_mib': peak,
                f'{method}_speed_x': times[f'monai:{row}'] / times[name],
                f'{method}_leaner_x':
                peaks[f'monai:{row}']['peak_mib'] / peak if peak else None,
                f'{method}_max_abs_diff': diff
            })
            if result['must_match'] and diff > atol * max(scale, 1.):
                failed = True
        results.append(result)
    return results, failed


def print_table(results, title):
    print(f'\n{title}')
    header = (f"{'blend':20s} {'method':7s} {'time s':>9s} {'speed x':>8s} "
              f"{'peak MiB':>9s} {'leaner x':>8s} {'max |diff|':>10s}")
    print(header)
    print('-' * len(header))
    for result in results:
        for i, method in enumerate(('monai', 'svd_mm', 'own')):
            leaner = result[f'{method}_leaner_x']
            diff = result[f'{method}_max_abs_diff']
            note = '' if result['must_match'] or method == 'monai' else (
                '  (other map)')
            print(f"{result['blend'] if i == 0 else '':20s} {method:7s} "
                  f"{result[f'{method}_s']:9.3f} "
                  f"{result[f'{method}_speed_x']:7.2f}x "
                  f"{result[f'{method}_peak_mib']:9.1f} "
                  f"{leaner if leaner else float('nan'):7.2f}x "
                  f'{diff:10.2e}{note}')
    print('speed x = MONAI time / method time, leaner x = MONAI peak / '
          'method peak (> 1: better than the direct MONAI call); max |diff| '
          "to MONAI's output")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return cpu_peak_worker(args.worker)
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        raise ValueError(f'unknown rows {sorted(unknown)}; choose from {ROWS}')
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args)
    volume, seg = real_volume(args.slices, args.size)
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(volume)]), False)
    inputs = data['inputs'].to(args.device)
    cfg = model.test_cfg
    if args.train_steps and not args.machinery_only:
        start = time.perf_counter()
        first, last = train_briefly(model, inputs, seg, args.train_steps)
        print(f'trained {args.train_steps} Adam steps on windows of the '
              f'volume: loss on the lesion window {first:.3f} -> {last:.3f} '
              f'({time.perf_counter() - start:.0f} s)')
    print(f'volume {tuple(inputs.shape)} (real CT, lung2, 1 mm slices), '
          f"window {tuple(cfg['crop_size'])}, stride {tuple(cfg['stride'])}"
          f", {cfg['batch_windows']} windows per batch, width "
          f'{model.backbone.base_channels}, device {args.device}, '
          f'{torch.get_num_threads()} CPU threads')

    names = [f'{m}:{r}' for r in args.rows for m in METHODS]
    saved = dict(
        shape=list(inputs.shape),
        window=list(cfg['crop_size']),
        stride=list(cfg['stride']),
        batch_windows=cfg['batch_windows'],
        width=model.backbone.base_channels,
        device=str(args.device))
    failed = False
    if not args.machinery_only:
        start = time.perf_counter()
        saved['rows'], failed = summarise(
            args.rows, *measure_rows(args, model, inputs, names, args.repeat),
            args.atol)
        print_table(saved['rows'], f'with the network (median of '
                    f'{args.repeat}; {time.perf_counter() - start:.0f} s)')
    if args.overhead_repeat:
        saved['machinery'], cheap_failed = summarise(
            args.rows,
            *measure_rows(
                args, model, inputs, names, args.overhead_repeat, cheap=True),
            args.atol)
        failed = failed or cheap_failed
        print_table(
            saved['machinery'], 'machinery only (cheap predictor instead of '
            f'the network, median of {args.overhead_repeat}):')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(saved, f, indent=1)
    if failed:
        print(f'FAILED: outputs differ by more than atol={args.atol} '
              '(relative to the logit scale)')
        sys.exit(1)


if __name__ == '__main__':
    main()
