"""Benchmark: the LiTS training loader, today's (whole volumes) vs the lazy
one (crop boxes only) vs MONAI's ``LoadImaged`` pipeline.

Data: the two real chest CTs of the pyradiomics sdist (512 x 512, 48 and 61
slices of 5 mm) laid out as raw LiTS volumes
(:func:`tests.helpers.lits_layout.build_lits_layout_from_ct`, whole CT with
``--size 512``) and prepared by ``tools/dataset_converters/prepare_lits.py``
(HU window -> uint8, 1 mm slices: 236 and 301 slices; 62 and 79 MB per
uncompressed image, as much per label). Rows, each on the same cases and
seeds (sample ``s`` is case ``s % 2`` with ``np.random.seed(seed + s)``):

- ``today``: the train pipeline of ``configs/_base_/datasets/lits.py``
  through :class:`~svd_mm.datasets.LiTSDataset` with
  ``LoadVolumeNifti(lazy=False)``: image and label read whole
  (:func:`~svd_mm.utils.volume_io.read_nifti`), then cropped 32x320x320,
  rescaled in-plane by 0.8-1.2, cropped 32x256x256, flipped, packed;
- ``new``: the same with ``LoadVolumeNifti(lazy=True)`` (the config's):
  the first crop reads only its box, through nibabel's ``ArrayProxy``
  slicing of the files;
- ``monai``: MONAI's equivalent: ``LoadImaged(keys=['img', 'seg'],
  reader='NibabelReader', image_only=True)`` (its default float32),
  ``EnsureChannelFirstd``, ``RandSpatialCropd`` of the first crop size,
  ``RandZoomd`` in-plane (0.8-1.2, ``keep_size=False``, trilinear / nearest;
  MONAI draws the two in-plane factors independently),
  ``RandSpatialCropd`` of the final size and ``RandFlipd`` along D and W.
  MONAI keeps the NIfTI (i, j, k) layout, so its sizes are given reversed.

svd_mm had its own lazy reader too, an advised memory map: this benchmark
measured it at 1.17x the samples/s of nibabel's slicing (26.23 vs 22.42),
1.08x from disk, 1.19x leaner (52 vs 62 MiB peak RSS), the same 10.8 MB
read per sample. Below the 1.2x that own code must earn, so it went.

Measured per row, in a fresh subprocess (one torch thread):

- **samples/s** from the page cache (the files read once before), whole
  pipeline, and the time of loading + the first crop alone;
- **peak RSS**: the resident set's high-water mark (``VmHWM``, reset
  through ``/proc/self/clear_refs`` after one warm-up sample) above the RSS
  before the timed samples;
- **bytes read per sample**: before each sample the data files are evicted
  from the page cache (``fdatasync`` + ``posix_fadvise(DONTNEED)``); after
  it, the bytes of the files in the page cache (``mincore``) are what the
  sample pulled from them, the kernel's read-ahead included. The time of
  these cold samples (from the disk, or whatever cache lies below this
  machine's block device) is printed too, as is ``/proc/self/io``'s
  ``read_bytes`` over them, for a cross-check. Without page-cache eviction
  the column says so.

``identical crops`` compares the packed inputs and labels of ``today`` with
``new`` for every sample, byte for byte; the script exits with status 1 if
one differs.

Examples::

    python benchmarks/loader.py                   # 20 samples, all rows
    python benchmarks/loader.py --rows today new --samples 40
    python benchmarks/loader.py --samples 40 --data-dir /tmp/lits_bench
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # svd_mm and tests.helpers of this checkout

LITS_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets', 'lits.py')
PREPARE = osp.join(REPO, 'tools', 'dataset_converters', 'prepare_lits.py')
ROWS = ('today', 'new', 'monai')


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def build_data(data_dir: str, size: int) -> List[Dict[str, str]]:
    """Raw LiTS layout of the pyradiomics CTs, prepared by prepare_lits.py.

    Returns:
        list[dict]: ``img_path`` and ``seg_map_path`` of the prepared cases.
    """
    from tests.helpers.lits_layout import build_lits_layout_from_ct
    from tests.helpers.tools import load_script
    raw, out = osp.join(data_dir, 'raw'), osp.join(data_dir, 'prepared')
    split = osp.join(out, 'split.json')
    if not osp.isfile(split):
        cases = build_lits_layout_from_ct(
            raw, in_plane_size=size, slice_margin=10000,
            steps=(1, ))['cases']
        split_file = osp.join(data_dir, 'train_split.json')
        with open(split_file, 'w') as f:
            json.dump(dict(train=[c['case_id'] for c in cases]), f)
        load_script(PREPARE).main([raw, out, '--split-file', split_file])
    with open(split) as f:
        train = json.load(f)['train']
    return [
        dict(
            img_path=osp.join(out, 'images', f'{case}.nii'),
            seg_map_path=osp.join(out, 'labels',
                                  case.replace('volume', 'segmentation') +
                                  '.nii')) for case in train
    ]


# --------------------------------------------------------------------------
# the loaders: a list of transforms and a sample -> input dict
# --------------------------------------------------------------------------
def svd_mm_pipeline(lazy, first_crop: Sequence[int],
                    crop: Sequence[int], data_root: str):
    """The LiTS train pipeline of the config through LiTSDataset."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import svd_mm  # noqa: F401
    from svd_mm.datasets import LiTSDataset
    pipeline = copy.deepcopy(Config.fromfile(LITS_CONFIG).train_pipeline)
    assert [t['type'] for t in pipeline] == [
        'LoadVolumeNifti', 'RandomCrop3D', 'RandomRescale3D', 'RandomCrop3D',
        'RandomFlip3D', 'PackSegVolumeInputs'
    ], pipeline
    pipeline[0]['lazy'] = lazy
    pipeline[1]['crop_size'] = tuple(first_crop)
    pipeline[3]['crop_size'] = tuple(crop)
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = LiTSDataset(
            data_root=data_root, split='train', pipeline=pipeline)
    return dataset.pipeline.transforms, dataset.get_data_info


def monai_pipeline(first_crop: Sequence[int], crop: Sequence[int]):
    """MONAI's equivalent (sizes in its (i, j, k) = (W, H, D) layout)."""
    from monai.transforms import (EnsureChannelFirstd, LoadImaged, RandFlipd,
                                  RandSpatialCropd, RandZoomd)
    keys = ['img', 'seg']
    return [
        LoadImaged(keys=keys, reader='NibabelReader', image_only=True),
        EnsureChannelFirstd(keys=keys),
        RandSpatialCropd(keys, roi_size=tuple(first_crop[::-1]),
                         random_size=False),
        RandZoomd(
            keys,
            prob=1.,
            min_zoom=(0.8, 0.8, 1.),
            max_zoom=(1.2, 1.2, 1.),
            mode=('trilinear', 'nearest'),
            keep_size=False),
        RandSpatialCropd(keys, roi_size=tuple(crop[::-1]),
                         random_size=False),
        RandFlipd(keys, prob=0.5, spatial_axis=2),  # D
        RandFlipd(keys, prob=0.5, spatial_axis=0),  # W
    ]


def _digest(sample) -> str:
    """sha1 of the packed input and label (svd_mm rows)."""
    sha = hashlib.sha1()  # of the arrays' buffers: no copies
    sha.update(np.ascontiguousarray(sample['inputs'].numpy()))
    sha.update(
        np.ascontiguousarray(sample['data_samples'].gt_sem_seg.data.numpy()))
    sha.update(repr(sorted(sample['data_samples'].metainfo.items())).encode())
    return sha.hexdigest()


# --------------------------------------------------------------------------
# the worker: one row, in a fresh process
# --------------------------------------------------------------------------
def _io_read_bytes() -> Optional[int]:
    try:
        with open('/proc/self/io') as f:
            for line in f:
                if line.startswith('read_bytes:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def make_sampler(spec: dict):
    """``sample(s) -> (packed data, load + first crop s, total s)`` of a
    row, on case ``s % len(cases)`` with seed ``spec['seed'] + s``."""
    row, cases = spec['row'], spec['cases']
    if row == 'monai':
        import monai
        transforms = monai_pipeline(spec['first_crop'], spec['crop'])
        first = 3  # load, channel first, first crop

        def make_input(i):
            return dict(img=cases[i]['img_path'], seg=cases[i]['seg_map_path'])

        def seed(s):
            monai.utils.set_determinism(s)
            for t in transforms:
                if hasattr(t, 'set_random_state'):
                    t.set_random_state(s)
    else:
        transforms, info = svd_mm_pipeline(row == 'new', spec['first_crop'],
                                           spec['crop'], spec['data_root'])
        first = 2  # load, first crop
        make_input = info

        def seed(s):
            np.random.seed(s)

    def sample(s):
        seed(spec['seed'] + s)
        data = make_input(s % len(cases))
        start = time.perf_counter()
        for i, t in enumerate(transforms):
            data = t(data)
            if i == first - 1:
                loaded = time.perf_counter()
        return data, loaded - start, time.perf_counter() - start

    return sample


def _cache_files(files: Sequence[str]) -> None:
    """Read the files once, into the page cache."""
    for path in files:
        with open(path, 'rb') as f:
            while f.read(1 << 24):
                pass


def run_speed(specs: List[dict]) -> Dict[str, dict]:
    """Samples/s of the rows from the page cache, timed round-robin (one
    sample of every row per round, so a change of machine load hits all
    rows alike)."""
    import torch
    torch.set_num_threads(1)
    samplers = {spec['row']: make_sampler(spec) for spec in specs}
    _cache_files([p for case in specs[0]['cases'] for p in case.values()])
    for sample in samplers.values():
        sample(0)  # warm-up
    times = {row: [] for row in samplers}
    loads = {row: [] for row in samplers}
    for s in range(specs[0]['samples']):
        for row, sample in samplers.items():
            _, load_time, total = sample(s)
            loads[row].append(load_time)
            times[row].append(total)
    return {
        row: dict(
            samples_per_s=len(times[row]) / sum(times[row]),
            load_crop_ms=1e3 * statistics.median(loads[row]))
        for row in samplers
    }


def run_row(spec: dict) -> dict:
    """Peak RSS, crops and bytes read of one loader; see the module doc."""
    import torch

    from tests.helpers.page_cache import (evict_file, page_cache_supported,
                                          resident_bytes)
    from tests.helpers.process_memory import peak_rss_above
    torch.set_num_threads(1)
    sample = make_sampler(spec)
    files = [p for case in spec['cases'] for p in case.values()]
    _cache_files(files)
    sample(0)  # warm-up
    digests = []
    with peak_rss_above() as memory:
        for s in range(spec['samples']):
            data, _, _ = sample(s)
            if spec['row'] != 'monai':
                digests.append(_digest(data))
            del data
    out = dict(
        row=spec['row'],
        peak_rss_mib=memory['peak_mib'],
        rss_method=memory['method'],
        digests=digests,
        bytes_per_sample=None,
        io_read_bytes_per_sample=None,
        cold_samples_per_s=None)
    if not page_cache_supported(files):
        return out
    # cold samples: evict, run, count the pages brought in
    counted, cold, io_bytes = [], [], 0
    for s in range(spec['samples']):
        for path in files:
            evict_file(path)
        io_start = _io_read_bytes()
        _, _, total = sample(s)
        io_end = _io_read_bytes()
        if io_start is not None and io_end is not None:
            io_bytes += io_end - io_start
        cold.append(total)
        counted.append(sum(resident_bytes(p) for p in files))
    out.update(
        bytes_per_sample=statistics.mean(counted),
        io_read_bytes_per_sample=io_bytes / len(counted),
        cold_samples_per_s=len(cold) / sum(cold))
    return out


def run_worker(task: str, payload) -> dict:
    """``run_row(payload)`` or ``run_speed(payload)`` in a fresh
    interpreter."""
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--worker',
        json.dumps(dict(task=task, payload=payload))
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{task} worker failed:\n{proc.stderr}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def _fmt(value, pattern):
    return 'n/a' if value is None else pattern.format(value)


def print_table(results: List[dict], args) -> None:
    ref = next((r for r in results if r['row'] == 'today'), None)
    print(f'{args.samples} samples per row, crops {tuple(args.first_crop)} -> '
          f'{tuple(args.crop)}, one torch thread, seed {args.seed}')
    header = ('| row | samples/s (page cache) | load + 1st crop ms | '
              'peak RSS MiB | MB read / sample | samples/s (evicted) | '
              'io read_bytes MB / sample |')
    print(header)
    print('|' + '---|' * 7)
    for r in results:
        speed = _fmt(r['samples_per_s'], '{:.2f}')
        mb = _fmt(r['bytes_per_sample'] and r['bytes_per_sample'] / 1e6,
                  '{:.1f}')
        if ref is not None and r is not ref:
            speed += f" ({r['samples_per_s'] / ref['samples_per_s']:.2f}x)"
            if r['bytes_per_sample'] and ref['bytes_per_sample']:
                ratio = r['bytes_per_sample'] / ref['bytes_per_sample']
                mb += f' ({ratio:.3f}x)'
        io_mb = r.get('io_read_bytes_per_sample')
        print(f"| {r['row']} | {speed} | {r['load_crop_ms']:.1f} | "
              f"{r['peak_rss_mib']:.0f} | {mb} | "
              f"{_fmt(r['cold_samples_per_s'], '{:.2f}')} | "
              f"{_fmt(io_mb and io_mb / 1e6, '{:.1f}')} |")
    if any(r['bytes_per_sample'] is None for r in results):
        print('(bytes read: the page cache of the data files cannot be '
              'evicted here)')
    print('(samples/s: the rows timed round-robin in one process; peak RSS: '
          f"{results[0]['rss_method']} above the RSS before the samples, "
          + ('a fresh process per row)' if args.subprocess else
             'NOT a fresh process per row: --no-subprocess)'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--samples', type=int, default=20,
                        help='samples per row (cases alternate)')
    parser.add_argument('--size', type=int, default=512,
                        help='in-plane size of the cases (512: whole CTs)')
    parser.add_argument('--first-crop', type=int, nargs=3,
                        default=(32, 320, 320), metavar=('D', 'H', 'W'))
    parser.add_argument('--crop', type=int, nargs=3, default=(32, 256, 256),
                        metavar=('D', 'H', 'W'))
    parser.add_argument('--rows', nargs='+', default=list(ROWS),
                        choices=ROWS)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-dir',
                        help='where to build (or find) the prepared data; '
                        'default: a temporary folder')
    parser.add_argument('--no-subprocess', dest='subprocess',
                        action='store_false',
                        help='run the rows in this process (peak RSS then '
                        'not per row)')
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)  # internal
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.worker:
        work = json.loads(args.worker)
        task = dict(row=run_row, speed=run_speed)[work['task']]
        print(json.dumps(task(work['payload'])))
        return []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        cases = build_data(data_dir, args.size)
        specs = [
            dict(
                row=row,
                cases=cases,
                data_root=osp.join(data_dir, 'prepared'),
                samples=args.samples,
                seed=args.seed,
                first_crop=list(args.first_crop),
                crop=list(args.crop)) for row in args.rows
        ]
        if args.subprocess:
            speed = run_worker('speed', specs)
            results = [run_worker('row', spec) for spec in specs]
        else:
            speed = run_speed(specs)
            results = [run_row(spec) for spec in specs]
    for result in results:
        result.update(speed[result['row']])
    print_table(results, args)
    by_row = {r['row']: r for r in results}
    identical = None
    if 'today' in by_row and 'new' in by_row:
        identical = by_row['today']['digests'] == by_row['new']['digests']
        print(f'identical crops (today vs new, {args.samples} samples): '
              f"{'yes' if identical else 'no'}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(rows=results, identical=identical), f, indent=1)
    if identical is False:
        sys.exit(1)
    return results


if __name__ == '__main__':
    main()
