"""`make demo`: SVD-Net end to end on real data, on a laptop-class CPU.

Each step is an ordinary svd_mm command a user could run alone; this script
only chains them and prints where the results are:

1. data: the 20 real ImageNet photos shipped in the ``foolbox`` wheel are
   laid out as an mmpretrain ``CustomDataset`` under ``data/foolbox``
   (fetched by package name, checksummed, cached in ``~/.cache/svd_mm``);
2. pseudo-3D pre-training (VDT + ResNet3D-18 at width 8) with
   ``tools/train.py configs/demo/vdt_r3d18-w8_1xb4-8e_foolbox.py``;
3. ``tools/model_converters/extract_backbone.py`` turns the checkpoint into
   backbone weights;
4. the weights are loaded into a fine-tuning ResNet3D with other strides
   (stem stride 1, depth stride 2) and run on a real chest-CT lesion patch
   from the ``pyradiomics`` sdist.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN_CFG = 'configs/demo/vdt_r3d18-w8_1xb4-8e_foolbox.py'


def parse_args():
    parser = argparse.ArgumentParser(description='svd_mm end-to-end demo')
    parser.add_argument(
        '--out', default='results/demo', help='folder for every result')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='minimum sizes and iterations (used by the test suite)')
    return parser.parse_args()


def step(title):
    print(f'\n=== {title}', flush=True)


def run(cmd):
    """Run one svd_mm command, streaming its log, failing loudly."""
    print('$ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f'demo: step failed (exit {proc.returncode}): '
                 f'{" ".join(cmd)}')
    print(f'    done in {time.time() - t0:.0f} s', flush=True)


def epoch_losses(work_dir):
    """Mean training loss per epoch from mmengine's json scalar log."""
    logs = []
    for root, _, files in os.walk(work_dir):
        logs += [
            osp.join(root, f) for f in files
            if f.endswith('.json') and osp.basename(root) == 'vis_data'
            and not f.startswith('scalars')
        ]
    per_epoch, metrics = {}, {}
    for line in open(sorted(logs)[-1]):
        rec = json.loads(line)
        if 'loss' in rec:
            per_epoch.setdefault(rec['epoch'], []).append(rec['loss'])
        else:
            metrics.update(rec)
    return {e: sum(v) / len(v) for e, v in per_epoch.items()}, metrics


def main():
    args = parse_args()
    out = osp.abspath(osp.join(REPO, args.out))
    os.makedirs(out, exist_ok=True)
    py = sys.executable

    step('1/4 real natural images (foolbox wheel, by package name)')
    from svd_mm.utils.data_cache import layout_classification_set
    data = layout_classification_set(osp.join(REPO, 'data', 'foolbox'))
    print(f'    {data["num_images"]} labelled photos in {data["data_root"]}')

    step('2/4 pseudo-3D pre-training: VDT + ResNet3D-18 (width 8)')
    pre_dir = osp.join(out, 'pretrain')
    epochs = 2 if args.tiny else 8
    cmd = [py, 'tools/train.py', PRETRAIN_CFG, '--work-dir', pre_dir]
    if args.tiny:
        cmd += [
            '--cfg-options', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}',
            f'param_scheduler.T_max={epochs}', f'param_scheduler.end={epochs}'
        ]
    run(cmd)
    losses, metrics = epoch_losses(pre_dir)

    step('3/4 extract the backbone weights')
    ckpt = osp.join(pre_dir, f'epoch_{epochs}.pth')
    backbone_ckpt = osp.join(out, 'r3d18-w8_svd_foolbox.pth')
    run([
        py, 'tools/model_converters/extract_backbone.py', ckpt, backbone_ckpt
    ])

    step('4/4 load into a fine-tuning ResNet3D, run on real chest CT')
    summary = finetune_forward(backbone_ckpt)

    report = dict(
        pretrain_loss_per_epoch=losses,
        pretrain_train_images_metrics={
            k: v
            for k, v in metrics.items() if k.startswith('accuracy')
        },
        **summary)
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(report, f, indent=1)
    print('\nSummary')
    first, last = losses[min(losses)], losses[max(losses)]
    print(f'    pre-training loss: epoch 1 {first:.3f} -> epoch '
          f'{max(losses)} {last:.3f}')
    for k, v in report['pretrain_train_images_metrics'].items():
        print(f'    {k} on the 20 training photos: {v:.1f}')
    print(f'    transferred tensors: {summary["transferred_tensors"]}, '
          f'fine-tune feature shapes: {summary["feature_shapes"]}')
    print(f'\nResults in {out}')


def finetune_forward(backbone_ckpt):
    import nrrd
    import numpy as np
    import torch
    from mmengine.registry import MODELS

    import svd_mm  # noqa: F401
    from svd_mm.utils.data_cache import fetch_pyradiomics_ct

    model = MODELS.build(
        dict(
            type='ResNet3D',
            depth=18,
            base_channels=8,
            stem_stride=1,
            slice_strides=(1, 2, 2, 2),
            out_indices=(0, 1, 2, 3),
            init_cfg=dict(type='Pretrained', checkpoint=backbone_ckpt)))
    model.init_weights()
    sd = torch.load(backbone_ckpt, weights_only=True)['state_dict']
    same = sum(torch.equal(v, model.state_dict()[k]) for k, v in sd.items())
    case = fetch_pyradiomics_ct()[0]
    image, _ = nrrd.read(case['image'])
    label, _ = nrrd.read(case['label'])
    vol, mask = image.T.astype(np.float32), label.T  # (z, y, x)
    zc, yc, xc = [int(np.mean(a)) for a in np.nonzero(mask)]
    z0 = min(max(zc - 16, 0), vol.shape[0] - 32)
    patch = vol[z0:z0 + 32, yc - 32:yc + 32, xc - 32:xc + 32]
    x = torch.from_numpy((np.clip(patch, -1024, 400) + 312) / 712.)
    model.eval()
    with torch.no_grad():
        feats = model(x[None, None].float())
    return dict(
        transferred_tensors=f'{same}/{len(sd)}',
        feature_shapes=[list(f.shape) for f in feats])


if __name__ == '__main__':
    main()
