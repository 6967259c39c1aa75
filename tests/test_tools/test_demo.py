"""`make demo` at minimum size, end to end: the same script with --tiny.

Checks every artefact: the pre-training checkpoint and the extracted
backbone, both fine-tuned segmentations and their metrics, the summary, the
Markdown report and the PNG pictures (which must decode)."""
import json
import os.path as osp
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_tiny_end_to_end(tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, 'tools/demo.py', '--tiny', '--out',
         str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f'Results in {out}' in proc.stdout

    backbone = torch.load(
        out / 'r3d18-w8_svd_foolbox.pth', weights_only=True)['state_dict']
    assert backbone['conv1.conv.weight'].shape == (8, 1, 7, 7, 7)

    summary = json.loads((out / 'summary.json').read_text())
    assert summary['transferred_tensors'] == '120/120'
    losses = list(summary['pretrain_loss_per_epoch'].values())
    assert len(losses) == 2 and np.isfinite(losses).all()
    for name in ('scratch', 'svd'):
        metrics = json.loads((out / f'metrics_{name}.json').read_text())
        assert set(metrics) == {'dice_per_case', 'dice_global'}
        assert all(0. <= v <= 1. for v in metrics.values())
        assert summary['finetune_heldout_metrics'][name] == metrics

    report = (out / 'report.md').read_text()
    assert '| Scratch |' in report
    assert '| SVD-Net (VDT pre-trained) |' in report

    pictures = summary['pictures']
    assert 'curves' in pictures
    overlays = [k for k in pictures if k.startswith('overlay_')]
    # one overlay per held-out nodule crop and model
    assert len(overlays) >= 2
    assert {k.split('_')[1] for k in overlays} == {'scratch', 'svd'}
    for path in pictures.values():
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0  # not a blank picture
