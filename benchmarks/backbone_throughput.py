"""Throughput of 3D ResNet-18 backbones on SVD-Net pseudo-volumes.

Compares, in one run and on the same input (N, 1, D=3, H, W) (a one-channel
volume made from an RGB image by the Variable Dimension Transform):

- ``svd_mm``: :class:`svd_mm.models.backbones.ResNet3D` (depth 18) in its
  default pre-training mode (no stride along D, so D=3 in every stage);
- ``torchvision``: ``torchvision.models.video.r3d_18`` with its stem
  convolution rebuilt for one input channel (same kernel (3, 7, 7), stride
  (1, 2, 2) and padding (1, 3, 3); the 3-channel RGB stem cannot take the
  one-channel volume);
- ``monai``: ``monai.networks.nets.resnet18(spatial_dims=3,
  n_input_channels=1)`` with its defaults (7x7x7 stem of stride 1).

Each backbone is followed by the same head (global average pooling and a
``Linear(512, 1000)``; torchvision's ``fc`` and MONAI's ``fc`` are replaced
by it). Rows:

- ``train``: one SGD step (momentum 0.9): forward, cross-entropy, backward,
  ``optimizer.step()``;
- ``infer``: forward in eval mode under ``torch.inference_mode()``.

FLOP convention: ``mmengine.analysis.get_model_complexity_info`` counts one
multiply-accumulate (MAC) as one "flop" (fvcore's convention). This script
reports FLOP = 2 x MAC, so that the numbers compare with the matmul ceiling
(2 n^3 FLOP for an n x n product). A training step counts 3x the forward
FLOPs (backward = gradient w.r.t. the input + w.r.t. the weights). FLOPs are
those of the plain model for every row of that model, so a lever that
changes the arithmetic (BN folding, depth folding) is credited only with
the time it saves. Two counts are given:

- ``mmengine``: as counted, i.e. including the multiplications by the zero
  padding of every convolution tap (large along D=3: a 7x7x7 stem reads
  only 3 of its 7 depth taps);
- ``useful``: the same with the padded taps of every convolution removed
  (the multiply-adds of real inputs).

Achieved GFLOP/s = FLOP per image x images/s. Peak memory: on GPU
``torch.cuda.max_memory_allocated`` above the memory allocated before the
steps; on CPU the peak resident set size (VmHWM, reset through
``/proc/self/clear_refs``) above the RSS after building the model, the
optimizer and the batch, measured in a fresh subprocess per row.

Levers (``--levers``; rows of svd_mm, and with ``--lever-baselines`` of the
baselines too for the generic ones), all numerically equivalent:

- ``channels_last``: the whole model and the input in ``channels_last_3d``;
- ``channels_last_early``: the same for the stem and the first
  ``--channels-last-stages`` stages (default 3), the later stages in the
  contiguous layout; for svd_mm this is the backbone's own option
  ``ResNet3D(channels_last_stages=...)``, for the baselines
  :func:`channels_last_early`;
- ``depth_fold``: ``fold_depth`` of ``benchmarks/depth_fold.py`` (the
  one-channel stem as a 2D convolution over (N, C * D, H, W));
- ``bn_fold``: batch norms folded into the convolutions (inference only);
- ``compile``: ``torch.compile``.

Each row is warmed up, then the rows are timed round-robin (one step of
each row per round) so that a change of machine load hits all rows alike;
the median step time is reported. ``--clock cpu`` times by the CPU time of
the process instead of the wall clock: with ``--threads 1`` on a machine
shared with other jobs, it leaves out the time spent waiting for a core.

Example:
    python benchmarks/backbone_throughput.py --device cpu --batch 8
    python benchmarks/backbone_throughput.py --levers none --no-memory
    python benchmarks/backbone_throughput.py --threads 1 --clock cpu \\
        --levers channels_last_early,bn_fold,compile --lever-baselines
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # tests.helpers of this checkout
from tests.helpers.process_memory import peak_rss_above  # noqa: E402
from tests.helpers.tools import load_script  # noqa: E402

# the depth fold is a performance experiment no config uses: it lives beside
# this benchmark, not in svd_mm
DEPTH_FOLD = load_script(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), 'depth_fold.py'))

MODEL_NAMES = ('svd_mm', 'torchvision', 'monai')
LEVERS = ('channels_last', 'channels_last_early', 'bn_fold', 'depth_fold',
          'compile')
# levers that apply to any model (``--lever-baselines``); the depth fold is
# meant for svd_mm's small fixed D
GENERIC_LEVERS = ('channels_last', 'channels_last_early', 'bn_fold', 'compile')
# the stages of the three backbones, and how many of them
# ``channels_last_early`` runs channels-last (the fastest on the idle 2-core
# CPU; see benchmarks/README.md)
LAYERS = ('layer1', 'layer2', 'layer3', 'layer4')
CHANNELS_LAST_STAGES = 3
INFERENCE_ONLY = ('bn_fold', )
# the levers that won on the 2-core CPU (see benchmarks/README.md), and the
# plain channels_last_3d for reference; bn_fold and compile did not win
DEFAULT_LEVERS = ('channels_last,channels_last_early,depth_fold,'
                  'channels_last_early+depth_fold')
FEAT_DIM = 512
NUM_CLASSES = 1000


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
class PooledClassifier(nn.Module):
    """Backbone, global average pooling and a linear classifier.

    Args:
        backbone (nn.Module): Maps (N, C, D, H, W) to a feature map
            (N, F, D', H', W'), a tuple ending with one, or pooled (N, F).
        feat_dim (int): F. Defaults to 512.
        num_classes (int): Number of classes. Defaults to 1000.
    """

    def __init__(self,
                 backbone: nn.Module,
                 feat_dim: int = FEAT_DIM,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(feat_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) -> logits (N, num_classes)."""
        feat = self.backbone(x)
        if isinstance(feat, (tuple, list)):
            feat = feat[-1]
        if feat.dim() > 2:
            feat = feat.mean(dim=tuple(range(2, feat.dim())))
        return self.fc(feat)


def build_model(name: str,
                in_channels: int = 1,
                base_channels: int = 64,
                levers: Sequence[str] = (),
                channels_last_stages: int = CHANNELS_LAST_STAGES) -> nn.Module:
    """Build one of :data:`MODEL_NAMES` with the common head.

    Args:
        name (str): ``'svd_mm'``, ``'torchvision'`` or ``'monai'``.
        in_channels (int): Input channels C of (N, C, D, H, W).
            Defaults to 1.
        base_channels (int): Width of the stem and first stage (the stages
            double it); not 64 only for svd_mm and MONAI (``widen_factor``),
            e.g. to keep tests small. Defaults to 64.
        levers (Sequence[str]): The row's levers; only
            ``channels_last_early`` acts here, as svd_mm's
            ``channels_last_stages`` (the others are applied by
            :func:`apply_levers`). Defaults to ().
        channels_last_stages (int): Stages in ``channels_last_3d`` with
            ``channels_last_early``. Defaults to
            :data:`CHANNELS_LAST_STAGES`.

    Returns:
        nn.Module: A :class:`PooledClassifier`, in train mode.
    """
    if base_channels != 64 and name == 'torchvision':
        raise ValueError('torchvision r3d_18 has a fixed width, got '
                         f'base_channels={base_channels}')
    if name == 'svd_mm':
        from svd_mm.models.backbones import ResNet3D
        backbone = ResNet3D(
            depth=18,
            in_channels=in_channels,
            base_channels=base_channels,
            channels_last_stages=channels_last_stages
            if 'channels_last_early' in levers else 0)
    elif name == 'torchvision':
        from torchvision.models.video import r3d_18
        backbone = r3d_18(weights=None)
        old = backbone.stem[0]
        backbone.stem[0] = nn.Conv3d(
            in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=False)
        backbone.fc = nn.Identity()
    elif name == 'monai':
        from monai.networks.nets import resnet18
        backbone = resnet18(
            spatial_dims=3,
            n_input_channels=in_channels,
            feed_forward=False,
            widen_factor=base_channels / 64)
    else:
        raise KeyError(f'unknown model {name!r}, expected one of '
                       f'{MODEL_NAMES}')
    return PooledClassifier(backbone, feat_dim=8 * base_channels)


# --------------------------------------------------------------------------
# levers
# --------------------------------------------------------------------------
def fold_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm into the convolution just before it.

    A norm is folded when it is the sibling registered right after a
    ``Conv1d/2d/3d`` (the order of ``ConvModule``, torchvision's
    ``Sequential`` and MONAI's blocks); it becomes ``nn.Identity``. Only
    valid for inference (running statistics).

    Args:
        model (nn.Module): The model, in eval mode; changed in place.

    Returns:
        nn.Module: ``model``.
    """
    last_conv_name = None
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            if last_conv_name is not None:
                conv = getattr(model, last_conv_name)
                setattr(model, last_conv_name, _fused_conv(conv, child))
                setattr(model, name, nn.Identity())
            last_conv_name = None
        elif isinstance(child, nn.modules.conv._ConvNd):
            last_conv_name = name
        else:
            fold_bn(child)
            last_conv_name = None
    return model


def _fused_conv(conv: nn.modules.conv._ConvNd,
                bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """Return a copy of ``conv`` computing ``bn(conv(x))`` (eval mode)."""
    if bn.training:
        raise RuntimeError('fold_bn needs the model in eval mode')
    fused = copy.deepcopy(conv)
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.affine:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(
        bn.running_mean)
    new_bias = (bias - bn.running_mean) * scale
    if bn.affine:
        new_bias = new_bias + bn.bias
    shape = (-1, ) + (1, ) * (conv.weight.dim() - 1)
    fused.weight = nn.Parameter((conv.weight * scale.reshape(shape)).detach())
    fused.bias = nn.Parameter(new_bias.detach())
    return fused


def _to_contiguous(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: hand the input on in the contiguous layout."""
    return (args[0].contiguous(), ) + tuple(args[1:])


def channels_last_early(
        model: nn.Module,
        channels_last_stages: int = CHANNELS_LAST_STAGES) -> nn.Module:
    """Run the stem and the first stages in ``channels_last_3d``.

    ``channels_last_3d`` makes oneDNN's convolutions, batch norms and
    max-pooling faster on large, thin feature maps (stem, early stages) and
    can make them slower on small, wide ones (layer4 at 4x4), so the late
    stages keep the contiguous layout; the switch is one copy at the entry
    of the first late stage. The generic counterpart of
    ``ResNet3D(channels_last_stages=...)``, for torchvision and MONAI.

    Args:
        model (nn.Module): A :class:`PooledClassifier` whose backbone has
            the stages ``layer1`` to ``layer4``; changed in place.
        channels_last_stages (int): How many stages run channels-last.
            Defaults to :data:`CHANNELS_LAST_STAGES`.

    Returns:
        nn.Module: ``model``.
    """
    model.to(memory_format=torch.channels_last_3d)
    for i, name in enumerate(LAYERS[channels_last_stages:]):
        stage = getattr(model.backbone, name)
        stage.to(memory_format=torch.contiguous_format)
        if i == 0:
            stage.register_forward_pre_hook(_to_contiguous)
    return model


def apply_levers(
        model: nn.Module,
        levers: Sequence[str],
        mode: str,
        channels_last_stages: int = CHANNELS_LAST_STAGES) -> nn.Module:
    """Apply ``levers`` (see :data:`LEVERS`) to ``model`` for ``mode``.

    ``compile`` is applied last; ``channels_last`` and
    ``channels_last_early`` (with ``channels_last_stages`` stages) convert
    the parameters (the input is converted by :func:`make_input`).
    """
    if 'bn_fold' in levers:
        if mode != 'infer':
            raise ValueError('bn_fold is an inference-only lever')
        model.eval()
        fold_bn(model)
    if 'depth_fold' in levers:
        DEPTH_FOLD.fold_depth(model)
    if 'channels_last' in levers and 'channels_last_early' in levers:
        raise ValueError('channels_last and channels_last_early exclude '
                         'each other')
    if 'channels_last' in levers:
        model.to(memory_format=torch.channels_last_3d)
    if ('channels_last_early' in levers
            and not getattr(model.backbone, 'channels_last_stages', 0)):
        # svd_mm's backbone has it built in (see build_model)
        channels_last_early(model, channels_last_stages)
    if 'compile' in levers:
        model = torch.compile(model)
    return model


# --------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------
def count_flops(name: str, input_shape: Tuple[int, ...]) -> Dict[str, float]:
    """Forward FLOP (= 2 x MAC) per image of the plain model.

    Args:
        name (str): Model name.
        input_shape (tuple[int]): (C, D, H, W) of one image.

    Returns:
        dict: ``mmengine``: 2 x the MACs counted by mmengine;
        ``useful``: the same without the padded taps of the convolutions.
    """
    from mmengine.analysis import get_model_complexity_info
    model = build_model(name, input_shape[0]).eval()
    x = torch.rand(1, *input_shape)
    padded_macs = []

    def hook(conv, inputs, output):
        k = conv.weight.shape[2:]
        counted = (
            output.shape[0] * conv.out_channels * conv.weight.shape[1] *
            output.shape[2:].numel() * k.numel())
        ones = torch.ones(1, 1, *inputs[0].shape[2:])
        taps = {
            1: F.conv1d,
            2: F.conv2d,
            3: F.conv3d
        }[len(k)](
            ones,
            torch.ones(1, 1, *k),
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation).sum().item()
        useful = (
            output.shape[0] * conv.out_channels * conv.weight.shape[1] * taps)
        padded_macs.append(counted - useful)

    handles = [
        m.register_forward_hook(hook) for m in model.modules()
        if isinstance(m, nn.modules.conv._ConvNd)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    info = get_model_complexity_info(
        model, inputs=(x, ), show_table=False, show_arch=False)
    macs = float(info['flops'])
    return dict(mmengine=2 * macs, useful=2 * (macs - sum(padded_macs)))


# --------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------
def make_input(batch: int, shape: Tuple[int, ...], levers: Sequence[str],
               device: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """A random batch (N, C, D, H, W) and random labels (N, )."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *shape, generator=g)
    y = torch.randint(0, NUM_CLASSES, (batch, ), generator=g)
    x, y = x.to(device), y.to(device)
    if 'channels_last' in levers or 'channels_last_early' in levers:
        # not x.contiguous(memory_format=...): with C=1 both layouts hold,
        # so it would keep the NCDHW strides and the stem would stay NCDHW
        x = torch.empty(
            x.shape, device=device,
            memory_format=torch.channels_last_3d).copy_(x)
    return x, y


def make_step(
        name: str,
        levers: Sequence[str],
        mode: str,
        batch: int,
        shape: Tuple[int, ...],
        device: str,
        channels_last_stages: int = CHANNELS_LAST_STAGES
) -> Callable[[], None]:
    """Build a model and return a function running one step of ``mode``."""
    torch.manual_seed(0)
    model = build_model(
        name,
        shape[0],
        levers=levers,
        channels_last_stages=channels_last_stages).to(device)
    if mode == 'infer':
        model.eval()
    model = apply_levers(model, levers, mode, channels_last_stages)
    x, y = make_input(batch, shape, levers, device)
    if mode == 'infer':

        def step():
            with torch.inference_mode():
                model(x)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    return step


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _best_time(fn: Callable[[], object], device: str,
               clock: Callable[[], float], iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        _sync(device)
        t = clock()
        fn()
        _sync(device)
        times.append(clock() - t)
    return min(times)


def matmul_ceiling(device: str,
                   clock: Callable[[], float] = time.perf_counter,
                   n: int = 4096,
                   iters: int = 5) -> float:
    """Best GFLOP/s of an n x n fp32 ``torch.mm`` (2 n^3 FLOP)."""
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    return 2 * n**3 / _best_time(lambda: torch.mm(a, b), device, clock,
                                 iters) / 1e9


def conv_ceiling(device: str,
                 clock: Callable[[], float] = time.perf_counter,
                 iters: int = 5) -> float:
    """Best GFLOP/s of a dense 3x3 ``conv2d`` (8, 256, 28, 28) -> 256
    channels (oneDNN on CPU, cuDNN on GPU), counted without padding."""
    x = torch.rand(8, 256, 28, 28, device=device)
    w = torch.rand(256, 256, 3, 3, device=device)
    return 2 * 8 * 256 * 256 * 9 * 26 * 26 / _best_time(
        lambda: F.conv2d(x, w), device, clock, iters) / 1e9


# --------------------------------------------------------------------------
# memory (fresh subprocess per row)
# --------------------------------------------------------------------------
def _memory_worker(spec: dict) -> dict:
    """Peak memory (MiB) above the state after building; see module doc."""
    torch.set_num_threads(spec['threads'])
    device = spec['device']
    step = make_step(spec['model'], spec['levers'], spec['mode'],
                     spec['batch'], tuple(spec['shape']), device,
                     spec['channels_last_stages'])
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(2):
            step()
        torch.cuda.synchronize()
        return dict(
            peak_mib=(torch.cuda.max_memory_allocated() - base) / 2**20,
            method='cuda.max_memory_allocated')
    with peak_rss_above() as memory:
        for _ in range(2):
            step()
    return memory


def measure_memory(spec: dict) -> dict:
    """Run :func:`_memory_worker` in a fresh interpreter."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__), '--memory-worker',
        json.dumps(spec)
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return dict(
            peak_mib=float('nan'),
            method='failed: ' + proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip() else 'failed')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def parse_lever_rows(text: str) -> List[Tuple[str, ...]]:
    """``'a,b+c'`` -> ``[('a', ), ('b', 'c')]``; ``'none'`` -> ``[]``."""
    if text.strip().lower() in ('', 'none'):
        return []
    rows = []
    for item in text.split(','):
        levers = tuple(sorted(filter(None, item.strip().split('+'))))
        for lever in levers:
            if lever not in LEVERS:
                raise SystemExit(f'unknown lever {lever!r} in --levers '
                                 f'{text!r}; expected some of {LEVERS}')
        if levers:
            rows.append(levers)
    return rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--batch', type=int, default=8, help='batch size N')
    parser.add_argument(
        '--size',
        type=int,
        nargs='+',
        default=[112],
        help='H [W] of the (N, 1, D, H, W) input; W defaults to H')
    parser.add_argument(
        '--slices', type=int, default=3, help='depth D (3 for VDT images)')
    parser.add_argument(
        '--iters', type=int, default=5, help='timed steps per row')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed steps per row')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch.set_num_threads (default: torch default)')
    parser.add_argument(
        '--levers',
        default=DEFAULT_LEVERS,
        help='comma-separated svd_mm lever rows, "+" combines levers in '
        f'one row, "none" for none; levers: {", ".join(LEVERS)}')
    parser.add_argument(
        '--channels-last-stages',
        type=int,
        choices=range(1, len(LAYERS) + 1),
        default=CHANNELS_LAST_STAGES,
        help='stages (after the stem) that channels_last_early runs in '
        'channels_last_3d')
    parser.add_argument(
        '--lever-baselines',
        action='store_true',
        help='also apply the generic levers '
        f'({", ".join(GENERIC_LEVERS)}) to torchvision and MONAI')
    parser.add_argument(
        '--modes',
        default='train,infer',
        help='comma-separated among train, infer')
    parser.add_argument(
        '--models',
        default=','.join(MODEL_NAMES),
        help='comma-separated among ' + ', '.join(MODEL_NAMES))
    parser.add_argument(
        '--clock',
        choices=('wall', 'cpu'),
        default='wall',
        help='time the steps by wall clock, or by the CPU time of this '
        'process (time.process_time; with --threads 1 on a CPU shared with '
        'other jobs it leaves out the time spent waiting for a core)')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the memory column')
    parser.add_argument(
        '--ceiling-size',
        type=int,
        default=4096,
        help='n of the n x n matmul ceiling')
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)  # internal
    return parser.parse_args(argv)


def _row_label(name: str, levers: Sequence[str]) -> str:
    return name + ''.join(f'+{lever}' for lever in levers)


def _loadavg() -> str:
    try:
        return ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        return 'n/a'


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.memory_worker:
        print(json.dumps(_memory_worker(json.loads(args.memory_worker))))
        return []
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = args.device
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda but torch.cuda.is_available() '
                             'is False')
        torch.backends.cudnn.benchmark = True
        if args.clock == 'cpu':
            raise SystemExit('--clock cpu only makes sense with --device cpu')
    height = args.size[0]
    width = args.size[1] if len(args.size) > 1 else height
    shape = (1, args.slices, height, width)
    modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    models = [m.strip() for m in args.models.split(',') if m.strip()]
    for m in modes:
        if m not in ('train', 'infer'):
            raise SystemExit(f'unknown mode {m!r} in --modes')
    for m in models:
        if m not in MODEL_NAMES:
            raise SystemExit(f'unknown model {m!r} in --models')
    lever_rows = parse_lever_rows(args.levers)

    specs = []
    for mode in modes:
        for name in models:
            specs.append((name, (), mode))
        for levers in lever_rows:
            if mode == 'train' and set(levers) & set(INFERENCE_ONLY):
                continue
            for name in models:
                generic = set(levers) <= set(GENERIC_LEVERS)
                if name == 'svd_mm' or (args.lever_baselines and generic):
                    specs.append((name, levers, mode))

    print(
        f'# torch {torch.__version__}, device {device}, threads {threads}, '
        f'input (N, C, D, H, W) = ({args.batch}, {", ".join(map(str, shape))})'
        f', warmup {args.warmup}, iters {args.iters}, channels_last_early: '
        f'stem + {args.channels_last_stages} stages')
    print(f'# load average at start: {_loadavg()}', flush=True)

    flops = {}
    for name in models:
        t = time.perf_counter()
        flops[name] = count_flops(name, shape)
        print(
            f'# {name}: {flops[name]["mmengine"] / 1e9:.2f} GFLOP/img '
            f'forward (mmengine, 2xMAC), {flops[name]["useful"] / 1e9:.2f}'
            f' useful ({time.perf_counter() - t:.1f}s)',
            flush=True)

    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    ceilings = dict(
        matmul=matmul_ceiling(device, clock, n=args.ceiling_size),
        conv=conv_ceiling(device, clock))
    print(
        f'# ceilings: torch.mm {args.ceiling_size}^2 fp32 '
        f'{ceilings["matmul"]:.1f} '
        f'GFLOP/s, conv2d 3x3 256ch {ceilings["conv"]:.1f} GFLOP/s',
        flush=True)

    rows = []
    for name, levers, mode in specs:
        t = time.perf_counter()
        step = make_step(name, levers, mode, args.batch, shape, device,
                         args.channels_last_stages)
        for _ in range(args.warmup):
            step()
        _sync(device)
        rows.append(
            dict(
                model=name,
                levers=list(levers),
                label=_row_label(name, levers),
                mode=mode,
                step=step,
                wall_times=[],
                cpu_times=[],
                warmup_s=time.perf_counter() - t))
        print(
            f'# warmed up {rows[-1]["label"]} ({mode}) in '
            f'{rows[-1]["warmup_s"]:.1f}s',
            flush=True)
    for _ in range(args.iters):
        for row in rows:
            _sync(device)
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            row['step']()
            _sync(device)
            row['wall_times'].append(time.perf_counter() - t_wall)
            row['cpu_times'].append(time.process_time() - t_cpu)
    print(f'# load average after timing: {_loadavg()}', flush=True)

    for row in rows:
        del row['step']
        row['median_wall_s'] = statistics.median(row['wall_times'])
        row['median_cpu_s'] = statistics.median(row['cpu_times'])
        row['median_s'] = row[f'median_{args.clock}_s']
        row['img_s'] = args.batch / row['median_s']
        factor = 3 if row['mode'] == 'train' else 1
        for key in ('mmengine', 'useful'):
            row[f'gflops_{key}'] = (
                factor * flops[row['model']][key] * row['img_s'] / 1e9)
        row['peak_mib'] = float('nan')
        if not args.no_memory:
            mem = measure_memory(
                dict(
                    model=row['model'],
                    levers=row['levers'],
                    mode=row['mode'],
                    batch=args.batch,
                    shape=list(shape),
                    device=device,
                    threads=threads,
                    channels_last_stages=args.channels_last_stages))
            row['peak_mib'] = mem['peak_mib']
            row['memory_method'] = mem['method']

    print_table(rows, args.batch, args.clock)
    print_ratios(rows, ceilings)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    args=vars(args),
                    torch=torch.__version__,
                    threads=threads,
                    flops_per_image=flops,
                    ceilings_gflops=ceilings,
                    rows=rows),
                f,
                indent=1)
    return rows


def print_table(rows: List[dict], batch: int, clock: str) -> None:
    """Print the rows as a markdown table."""
    header = ('| row | mode | wall ms/step | CPU ms/step | img/s '
              '| GFLOP/s (mmengine) | GFLOP/s (useful) | peak mem MiB '
              '| warmup s |')
    print()
    print(header)
    print('|' + '---|' * (header.count('|') - 1))
    for r in rows:
        print(f'| {r["label"]} | {r["mode"]} | {1e3 * r["median_wall_s"]:.0f} '
              f'| {1e3 * r["median_cpu_s"]:.0f} | {r["img_s"]:.1f} '
              f'| {r["gflops_mmengine"]:.1f} | {r["gflops_useful"]:.1f} '
              f'| {r["peak_mib"]:.0f} | {r["warmup_s"]:.1f} |')
    print(f'(batch {batch}; img/s and GFLOP/s from the {clock} clock; CPU '
          'ms = process CPU time summed over threads; train = 3 x forward '
          'FLOPs per image; FLOP = 2 x MAC; medians over the timed steps)')


def print_ratios(rows: List[dict], ceilings: Dict[str, float]) -> None:
    """Print svd_mm / baseline ratios of achieved GFLOP/s and img/s."""
    print()
    for mode in ('train', 'infer'):
        mode_rows = [r for r in rows if r['mode'] == mode]
        plain = {r['model']: r for r in mode_rows if not r['levers']}
        best = {}
        for r in mode_rows:
            if r['model'] not in best or r['img_s'] > best[
                    r['model']]['img_s']:
                best[r['model']] = r
        if 'svd_mm' not in best:
            continue
        for base in ('torchvision', 'monai'):
            if base not in plain:
                continue
            # plain / plain, best svd_mm / plain, best / best
            pairs = [(plain.get('svd_mm'), plain[base]),
                     (best['svd_mm'], plain[base])]
            if best[base] is not plain[base]:
                pairs.append((best['svd_mm'], best[base]))
            for svd, other in pairs:
                if svd is None:
                    continue
                print(
                    f'{mode}: {svd["label"]} / {other["label"]}: GFLOP/s '
                    f'{svd["gflops_mmengine"] / other["gflops_mmengine"]:.2f}'
                    'x (mmengine), '
                    f'{svd["gflops_useful"] / other["gflops_useful"]:.2f}x '
                    f'(useful); img/s {svd["img_s"] / other["img_s"]:.2f}x')
        if 'svd_mm' in plain:
            gflops = plain['svd_mm']['gflops_mmengine']
            print(f'{mode}: svd_mm plain reaches {gflops:.0f} GFLOP/s '
                  f'(mmengine) = {gflops / ceilings["matmul"]:.0%} of the '
                  f'torch.mm ceiling, {gflops / ceilings["conv"]:.0%} of the '
                  'conv2d ceiling')


if __name__ == '__main__':
    main()
