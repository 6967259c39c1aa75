"""One pre-training step of SVD-Net's detectors or segmentors: images/s
and memory.

``--task det`` (the default) times one full detection training step (data
pre-processing, backbone, neck, RPN and RoI heads with their losses,
backward, SGD update) of the Faster R-CNN models of ``configs/pretrain/coco``
at their real widths, on a batch of ``--batch`` images of ``--size`` x
``--size`` pixels, side by side:

- ``r3d18``: ``faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py`` (ResNet3D-18,
  GTM + FPN, GN);
- ``p3d63``: ``faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py`` (P3D-63);
- ``r3d50``: ``faster-rcnn_r3d50_gtm-fpn_8xb2-72e_coco.py`` (ResNet3D-50);
- ``r18-2d``: mmdet's own Faster R-CNN, built from
  ``mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py`` with a 2D ResNet-18
  (``depth=18``, FPN ``in_channels=[64, 128, 256, 512]``; no pre-trained
  weights, no frozen stage and BN in train mode, i.e. trained from scratch
  like the 3D rows): BN, ``Shared2FCBBoxHead``, input (N, 3, H, W);
- ``r18-2d-gn``: the detector of the ``r3d18`` row (GN, FPN,
  ``Shared4Conv1FCBBoxHead``) with mmdet's 2D ResNet-18 (GN) instead of the
  3D backbone and no GTM, so that only the backbone differs from ``r3d18``.

``--task seg`` times one semantic-segmentation training step (pre-processing,
backbone, neck, UPerHead and FCN auxiliary head with their cross-entropy
losses, backward, SGD update) of the ADE20K UPerNets (150 classes):

- ``upernet-r3d18``: ``configs/pretrain/seg/upernet_r3d18_gtm_4xb4-160k_
  ade20k-512x512.py`` (ResNet3D-18 in pre-train mode + GTM + UPerHead);
- ``upernet-r18-2d``: mmseg's own
  ``mmseg::upernet/upernet_r18_4xb4-160k_ade20k-512x512.py`` (2D
  ResNetV1c-18 + UPerHead, the same heads), input (N, 3, H, W); its
  ``SegDataPreProcessor`` gets the crop ``size`` (``--size``; 512 in
  mmseg's ResNet-50 sibling config, which the ResNet-18 file lacks).

Neither loads pre-trained weights (random init, every stage trained) and
SyncBN is reverted to BN as a one-device training run does.

The 3D rows take the one-channel volume (N, 1, 3, H, W) that
``RGBToVolume`` makes of an RGB image; all rows get the same image (fixed
random pixels) and the same 5 ground-truth boxes or the same label map
(64x64 blocks of 150 classes). SVD-Net states that P3D-63
is computationally and memory efficient compared with ResNet3D-50; the
``p3d63`` / ``r3d50`` ratios measure that claim on this machine.

Each row runs in a fresh subprocess: the model and the optimizer are built,
``--warmup`` steps are run, then ``--iters`` timed steps; with ``--rounds``
the rows are run one after the other that many times. The fastest step
gives images/s (``batch / min``) and the ratios: on a shared machine it is
the step least slowed down by other processes (the median is printed too).
After the full steps the backbone alone is timed too (forward and backward
of the mean of its outputs on the same pre-processed batch, no update;
``backbone s``), which separates the backbones from the detector parts all
rows share. Memory:

- CPU: the peak resident set size of the subprocess (``VmHWM`` of
  ``/proc/self/status``; ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  where ``/proc`` is missing), and that peak minus the RSS right after
  building the model, the optimizer and the batch (``step MiB``: what the
  training steps add: activations, gradients, momentum buffers);
- CUDA: ``torch.cuda.max_memory_allocated`` (all tensors) and the same
  minus the memory allocated before the first step.

Example:
    python benchmarks/pretrain_step.py --iters 3
    python benchmarks/pretrain_step.py --iters 2 --rounds 2  # busy machine
    python benchmarks/pretrain_step.py --size 384 --models r3d18,p3d63
    python benchmarks/pretrain_step.py --device cuda --iters 20 --batch 2
    python benchmarks/pretrain_step.py --task seg --iters 2 --batch 4
"""
import argparse
import copy
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # svd_mm and tests.helpers of this checkout
COCO_CONFIGS = osp.join(REPO, 'configs', 'pretrain', 'coco')
SEG_CONFIGS = osp.join(REPO, 'configs', 'pretrain', 'seg')
MMDET_2D_CONFIG = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
MMSEG_2D_CONFIG = 'mmseg::upernet/upernet_r18_4xb4-160k_ade20k-512x512.py'
#: row name -> (config file or toolbox config, kind of input, task)
MODELS: Dict[str, tuple] = {
    'r3d18': (osp.join(COCO_CONFIGS,
                       'faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py'), '3d',
              'det'),
    'p3d63': (osp.join(COCO_CONFIGS,
                       'faster-rcnn_p3d63_gtm-fpn_8xb2-72e_coco.py'), '3d',
              'det'),
    'r3d50': (osp.join(COCO_CONFIGS,
                       'faster-rcnn_r3d50_gtm-fpn_8xb2-72e_coco.py'), '3d',
              'det'),
    'r18-2d': (MMDET_2D_CONFIG, '2d', 'det'),
    'r18-2d-gn': (osp.join(COCO_CONFIGS,
                           'faster-rcnn_r3d18_gtm-fpn_8xb2-72e_coco.py'),
                  '2d', 'det'),
    'upernet-r3d18':
    (osp.join(SEG_CONFIGS, 'upernet_r3d18_gtm_4xb4-160k_ade20k-512x512.py'),
     '3d', 'seg'),
    'upernet-r18-2d': (MMSEG_2D_CONFIG, '2d', 'seg'),
}
#: task -> (default rows, default reference row)
TASKS = {
    'det': (['r3d18', 'p3d63', 'r3d50', 'r18-2d', 'r18-2d-gn'], 'r3d50'),
    'seg': (['upernet-r3d18', 'upernet-r18-2d'], 'upernet-r18-2d'),
}
# the label map of the segmentation rows: 64x64 blocks of ADE20K classes
SEG_BLOCK = 64
SEG_CLASSES = 150
# 5 ground-truth boxes (x1, y1, x2, y2) as fractions of the image side,
# placed like the cars of terrain2.png (sahi), with COCO class indices
GT_BOXES = [(0.21, 0.66, 0.43, 0.89), (0.49, 0.66, 0.61, 0.80),
            (0.62, 0.64, 0.70, 0.72), (0.71, 0.62, 0.78, 0.70),
            (0.77, 0.59, 0.81, 0.66)]
GT_LABELS = [2, 2, 2, 7, 0]


# --------------------------------------------------------------------------
# worker: one row in a fresh process
# --------------------------------------------------------------------------
def build_config(name: str, size: int = 512):
    """The model and optim wrapper config of a row (see module doc) for
    ``size`` x ``size`` crops."""
    from mmengine.config import Config
    from mmengine.hub import get_config
    path = MODELS[name][0]
    if name == 'upernet-r18-2d':
        cfg = get_config(path)
        # no download: random init like the 3D row
        cfg.model.pretrained = None
        # the crop size its ResNet-50 sibling sets and this file lacks
        # (mmseg's SegDataPreProcessor needs a size or a size divisor)
        cfg.model.data_preprocessor.size = (size, size)
    elif name == 'upernet-r3d18':
        cfg = Config.fromfile(path)
        cfg.model.backbone.init_cfg = None
    elif name == 'r18-2d':
        cfg = get_config(path)
        # trained from scratch like the 3D rows: every stage, BN updated
        cfg.model.backbone.update(
            depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None)
        cfg.model.neck.in_channels = [64, 128, 256, 512]
    elif name == 'r18-2d-gn':
        cfg = Config.fromfile(path)
        norm_cfg = copy.deepcopy(cfg.model.backbone.norm_cfg)
        cfg.model.backbone = dict(
            type='ResNet',
            depth=18,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=norm_cfg,
            norm_eval=False,
            zero_init_residual=False,
            init_cfg=None)
        cfg.model.neck = cfg.model.neck[1]  # FPN only: no GTM in 2D
        cfg.model.data_preprocessor = dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32)
    else:
        cfg = Config.fromfile(path)
    return cfg


def make_batch(kind: str, size: int, batch: int) -> dict:
    """A batch as the dataloader gives it: ``inputs`` (uint8 (1, 3, H, W)
    volumes or (3, H, W) images) and ``data_samples`` with 5 boxes."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(
        0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
    inputs, data_samples = [], []
    for _ in range(batch):
        # RGBToVolume: (H, W, 3) -> (1, 3, H, W), colour becomes depth
        inputs.append(image[None].clone() if kind == '3d' else image.clone())
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(GT_BOXES) * size,
            labels=torch.tensor(GT_LABELS))
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)


def make_seg_batch(kind: str, size: int, batch: int) -> dict:
    """A segmentation batch: ``inputs`` as in :func:`make_batch` and
    ``data_samples`` with an (1, H, W) label map of 64x64 class blocks."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(
        0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
    block = torch.arange(size) // SEG_BLOCK
    label_map = (block[:, None] * 7 + block[None, :] * 3) % SEG_CLASSES
    inputs, data_samples = [], []
    for _ in range(batch):
        inputs.append(image[None].clone() if kind == '3d' else image.clone())
        sample = SegDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label_map[None].clone())
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)


def build_model(name: str, size: int = 512):
    """Build row ``name`` in its toolbox's default scope for ``size`` x
    ``size`` crops; return the config too."""
    from mmengine.model import revert_sync_batchnorm

    import svd_mm  # noqa: F401  (registers the svd_mm modules)
    if MODELS[name][2] == 'seg':
        from mmseg.registry import MODELS as TOOLBOX_MODELS
        from mmseg.utils import register_all_modules
    else:
        from mmdet.registry import MODELS as TOOLBOX_MODELS
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = build_config(name, size)
    # a one-device training run reverts SyncBN (mmengine's Runner)
    model = revert_sync_batchnorm(TOOLBOX_MODELS.build(cfg.model))
    model.init_weights()
    return cfg, model


def _rss_mib() -> Optional[float]:
    from tests.helpers.process_memory import proc_status_kib
    kib = proc_status_kib('VmRSS')
    return None if kib is None else kib / 1024


def _peak_rss_mib() -> float:
    from tests.helpers.process_memory import proc_status_kib
    kib = proc_status_kib('VmHWM')
    if kib is None:  # Linux reports ru_maxrss in KiB
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def run_worker(name: str, size: int, iters: int, warmup: int, batch: int,
               device: str, threads: Optional[int]) -> dict:
    """Build row ``name`` and time its training steps (see module doc)."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper

    # the current logger: keeps init_weights' per-parameter log quiet
    MMLogger.get_instance('pretrain_step', log_level='ERROR')
    cfg, model = build_model(name, size)
    model.to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    _, kind, task = MODELS[name]
    data = (make_seg_batch if task == 'seg' else make_batch)(kind, size,
                                                             batch)

    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    def step() -> float:
        step_data = copy.deepcopy(data)  # the pre-processor edits samples
        sync()
        start = time.perf_counter()
        losses = model.train_step(step_data, optim_wrapper)
        sync()
        elapsed = time.perf_counter() - start
        if not all(torch.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f'{name}: non-finite loss {losses}')
        return elapsed

    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        built_mib = torch.cuda.memory_allocated() / 2**20
    else:
        built_mib = _rss_mib()
    for _ in range(warmup):
        step()
    times = [step() for _ in range(iters)]
    if device.startswith('cuda'):
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
        memory = 'cuda max_memory_allocated'
    else:
        peak_mib = _peak_rss_mib()
        memory = 'peak RSS (VmHWM)'
    median = statistics.median(times)

    # the backbone alone (after the memory reading): forward and backward
    # of the mean of its outputs on the pre-processed batch, no update
    inputs = model.data_preprocessor(copy.deepcopy(data), True)['inputs']

    def backbone_step() -> float:
        model.zero_grad(set_to_none=True)
        sync()
        start = time.perf_counter()
        outs = model.backbone(inputs)
        sum(out.float().mean() for out in outs).backward()
        sync()
        return time.perf_counter() - start

    backbone_times = [backbone_step() for _ in range(warmup + iters)]
    backbone_times = backbone_times[warmup:]
    return dict(
        name=name,
        backbone=cfg.model.backbone.type,
        input=('(N, 1, 3, {s}, {s})' if MODELS[name][1] == '3d' else
               '(N, 3, {s}, {s})').format(s=size),
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        backbone_params_m=sum(p.numel()
                              for p in model.backbone.parameters()) / 1e6,
        batch=batch,
        step_s=min(times),
        median_step_s=median,
        times_s=times,
        images_per_s=batch / min(times),
        backbone_times_s=backbone_times,
        backbone_step_s=min(backbone_times),
        peak_mib=peak_mib,
        step_mib=None if built_mib is None else peak_mib - built_mib,
        memory=memory,
        threads=torch.get_num_threads(),
        device=device)


# --------------------------------------------------------------------------
# parent: one subprocess per row, then the table
# --------------------------------------------------------------------------
def run_row(name: str, args: argparse.Namespace) -> dict:
    """Run one row in a fresh interpreter and return its JSON result."""
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--worker', name, '--size',
        str(args.size), '--iters',
        str(args.iters), '--warmup',
        str(args.warmup), '--batch',
        str(args.batch), '--device', args.device
    ]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f'row {name} failed (exit {proc.returncode}):\n'
                           f'{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def merge_runs(runs: List[dict]) -> dict:
    """One row from the runs of several rounds: the fastest step, the
    median of all steps and the largest memory."""
    row = dict(runs[0])
    times = [t for run in runs for t in run['times_s']]
    backbone_times = [t for run in runs for t in run['backbone_times_s']]
    row.update(
        backbone_times_s=backbone_times,
        backbone_step_s=min(backbone_times),
        times_s=times,
        step_s=min(times),
        median_step_s=statistics.median(times),
        images_per_s=row['batch'] / min(times),
        peak_mib=max(run['peak_mib'] for run in runs))
    if all(run['step_mib'] is not None for run in runs):
        row['step_mib'] = max(run['step_mib'] for run in runs)
    return row


def format_table(rows: List[dict], reference: str) -> str:
    """A Markdown table of the rows with ratios to row ``reference``."""
    ref = next((r for r in rows if r['name'] == reference), None)
    head = ('| model | backbone | input | params (M) | backbone (M) | '
            's/step (min) | s/step (median) | img/s | backbone s (min) | '
            'peak MiB | step MiB |')
    sep = '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    if ref is not None:
        head += (f' img/s ÷ {reference} | backbone speed ÷ {reference} | '
                 f'step MiB ÷ {reference} |')
        sep += '---:|---:|---:|'
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['name']} | {r['backbone']} | {r['input']} | "
                f"{r['params_m']:.2f} | {r['backbone_params_m']:.2f} | "
                f"{r['step_s']:.2f} | {r['median_step_s']:.2f} | "
                f"{r['images_per_s']:.3f} | "
                f"{r['backbone_step_s']:.2f} | "
                f"{r['peak_mib']:.0f} | "
                + ('n/a' if r['step_mib'] is None else
                   f"{r['step_mib']:.0f}") + ' |')
        if ref is not None:
            mem_ratio = ('n/a' if r['step_mib'] is None
                         or not ref['step_mib'] else
                         f"{r['step_mib'] / ref['step_mib']:.2f}")
            line += (f" {r['images_per_s'] / ref['images_per_s']:.2f} | "
                     f"{ref['backbone_step_s'] / r['backbone_step_s']:.2f} | "
                     f'{mem_ratio} |')
        lines.append(line)
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Images/s and peak memory of one COCO pre-training step '
        '(Faster R-CNN + GTM + FPN) for ResNet3D-18, P3D-63, ResNet3D-50 and '
        '2D ResNet-18 detectors, or of one ADE20K segmentation pre-training '
        'step (UPerNet) for ResNet3D-18 + GTM and 2D ResNet-18')
    parser.add_argument(
        '--task',
        choices=sorted(TASKS),
        default='det',
        help='the default rows and reference: det (COCO detectors) or seg '
        '(ADE20K UPerNets) (default: det)')
    parser.add_argument(
        '--models',
        default=None,
        help=f'comma-separated rows, from {list(MODELS)} (default: all '
        'rows of --task)')
    parser.add_argument(
        '--size', type=int, default=512, help='image side (default: 512)')
    parser.add_argument(
        '--iters', type=int, default=5, help='timed steps (default: 5)')
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed steps (default: 1)')
    parser.add_argument(
        '--rounds',
        type=int,
        default=1,
        help='run the rows one after the other this many times, each in a '
        'fresh process, so that a change of machine load hits all rows '
        '(default: 1)')
    parser.add_argument(
        '--batch',
        type=int,
        default=2,
        help='images per step (default: 2, the per-GPU batch of the '
        'configs)')
    parser.add_argument(
        '--device', default='cpu', help='cpu or cuda[:i] (default: cpu)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch intra-op threads (default: torch\'s own)')
    parser.add_argument(
        '--reference',
        default=None,
        help='row the ratios are relative to (default: r3d50 for det, '
        'upernet-r18-2d for seg)')
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    default_rows, default_reference = TASKS[args.task]
    if args.models is None:
        args.models = ','.join(default_rows)
    if args.reference is None:
        args.reference = default_reference
    names = [n for n in args.models.split(',') if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f'unknown model(s) {unknown}, expected names from '
                     f'{list(MODELS)}')
    if args.size < 32 or min(args.iters, args.batch, args.rounds) < 1:
        parser.error('--size must be >= 32, --iters, --batch and --rounds '
                     '>= 1')
    args.model_names = names
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        result = run_worker(args.worker, args.size, args.iters, args.warmup,
                            args.batch, args.device, args.threads)
        print(json.dumps(result))
        return
    runs: Dict[str, List[dict]] = {name: [] for name in args.model_names}
    for round_idx in range(args.rounds):
        for name in args.model_names:
            print(f'round {round_idx + 1}/{args.rounds}, {name}: building '
                  'and timing in a fresh process ...',
                  file=sys.stderr,
                  flush=True)
            runs[name].append(run_row(name, args))
    rows = [merge_runs(runs[name]) for name in args.model_names]
    r = rows[0]
    print(f"One training step, batch {args.batch} of {args.size}x"
          f"{args.size}, device {r['device']}, {r['threads']} thread(s), "
          f"{args.rounds} round(s) x {args.iters} timed step(s) after "
          f"{args.warmup} warm-up, img/s from the fastest step; "
          'backbone s: forward + backward of the backbone alone on the '
          'same batch (fastest); '

          f"memory: {r['memory']} (step MiB: above the state after "
          'building).')
    print(format_table(rows, args.reference))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
