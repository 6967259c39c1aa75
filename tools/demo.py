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
   from the ``pyradiomics`` sdist;
5. an LIDC-IDRI-layout set of nodule-centred and background crops is cut
   from those real chest CTs (``tests.helpers.lidc_layout``);
6. the LIDC segmentation row configs ``configs/lidc/seg/`` (Table III) are
   fine-tuned with ``tools/train.py`` from the SVD weights of step 3 and
   from scratch, same seed, same budget, shrunk to demo size;
7. both are evaluated with ``tools/test.py`` on the held-out crops, and a
   report is written: a metrics table (Markdown), training curves and
   overlays of predicted vs. true lesion on CT slices (PNG).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # svd_mm and tests.helpers of this checkout
PRETRAIN_CFG = 'configs/demo/vdt_r3d18-w8_1xb4-8e_foolbox.py'
SEG_ROWS = {
    'scratch': 'configs/lidc/seg/fcn3d_r3d18-scratch_4xb4-100e_lidc-seg-48.py',
    'svd': 'configs/lidc/seg/fcn3d_r3d18-svd-in1k_4xb4-100e_lidc-seg-48.py',
}
WIDTH = 8  # the demo pre-training width


def parse_args():
    parser = argparse.ArgumentParser(description='svd_mm end-to-end demo')
    parser.add_argument(
        '--out', default='results/demo', help='folder for every result')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='minimum sizes and iterations (used by the test suite)')
    from svd_mm.apis.quiet import add_verbose_argument
    add_verbose_argument(parser)
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
    from svd_mm.apis import filter_known_warnings
    filter_known_warnings(args.verbose)
    out = osp.abspath(osp.join(REPO, args.out))
    os.makedirs(out, exist_ok=True)
    py = sys.executable

    step('1/7 real natural images (foolbox wheel, by package name)')
    from tests.helpers.data_cache import layout_classification_set
    data = layout_classification_set(osp.join(REPO, 'data', 'foolbox'))
    print(f'    {data["num_images"]} labelled photos in {data["data_root"]}')

    step('2/7 pseudo-3D pre-training: VDT + ResNet3D-18 (width 8)')
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

    step('3/7 extract the backbone weights')
    ckpt = osp.join(pre_dir, f'epoch_{epochs}.pth')
    backbone_ckpt = osp.join(out, 'r3d18-w8_svd_foolbox.pth')
    run([
        py, 'tools/model_converters/extract_backbone.py', ckpt, backbone_ckpt
    ])

    step('4/7 load into a fine-tuning ResNet3D, run on real chest CT')
    summary = finetune_forward(backbone_ckpt)

    step('5/7 LIDC-IDRI-layout nodule crops from the real chest CTs')
    from tests.helpers.lidc_layout import build_lidc_layout_from_ct
    crop = 24 if args.tiny else 32
    lidc = build_lidc_layout_from_ct(
        osp.join(REPO, 'data', 'lidc_demo'), size=crop + 8)
    print(f'    {len(lidc["train"])} training and {len(lidc["test"])} '
          f'held-out crops in {lidc["data_root"]}')

    step('6/7 fine-tune LIDC nodule segmentation: SVD weights vs scratch')
    seg_epochs = 3 if args.tiny else 15
    options = seg_options(lidc['data_root'], crop, seg_epochs)
    seg_dirs, seg_metrics = {}, {}
    for name, config in SEG_ROWS.items():
        work_dir = osp.join(out, f'finetune_{name}')
        cmd = [py, 'tools/train.py', config, '--work-dir', work_dir,
               '--cfg-options', *options]
        if name == 'svd':
            cmd.append(f'model.backbone.init_cfg.checkpoint={backbone_ckpt}')
        run(cmd)
        seg_dirs[name] = work_dir

    step('7/7 evaluate both on the held-out crops, write the report')
    for name, config in SEG_ROWS.items():
        metrics_file = osp.join(out, f'metrics_{name}.json')
        run([
            py, 'tools/test.py', config,
            osp.join(seg_dirs[name], f'epoch_{seg_epochs}.pth'),
            '--work-dir',
            osp.join(out, f'test_{name}'), '--out', metrics_file,
            '--cfg-options', *options
        ])
        with open(metrics_file) as f:
            seg_metrics[name] = json.load(f)
    pictures = make_pictures(out, seg_dirs, options, seg_epochs)

    report = dict(
        pretrain_loss_per_epoch=losses,
        pretrain_train_images_metrics={
            k: v
            for k, v in metrics.items() if k.startswith('accuracy')
        },
        finetune_heldout_metrics=seg_metrics,
        pictures=pictures,
        **summary)
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(report, f, indent=1)
    table = write_table(out, seg_metrics, seg_epochs, crop)
    print('\nSummary')
    first, last = losses[min(losses)], losses[max(losses)]
    print(f'    pre-training loss: epoch 1 {first:.3f} -> epoch '
          f'{max(losses)} {last:.3f}')
    for k, v in report['pretrain_train_images_metrics'].items():
        print(f'    {k} on the 20 training photos: {v:.1f}')
    print(f'    transferred tensors: {summary["transferred_tensors"]}, '
          f'fine-tune feature shapes: {summary["feature_shapes"]}')
    print(table)
    print(f'\nResults in {out}')


def seg_options(data_root, crop, epochs):
    """``--cfg-options`` shrinking the LIDC segmentation rows to demo size:
    the pre-training width, small crops, a few epochs, one seed."""
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
            f'{loader}.batch_size=4',
            f'{loader}.dataset.pipeline.1.crop_size={crop}'
        ]
    return options + [
        f'model.backbone.base_channels={WIDTH}',
        f'model.decode_head.in_channels={WIDTH * 8}',
        'model.decode_head.channels=16', 'train_dataloader.dataset.'
        'pipeline.1.jitter=2', 'optim_wrapper.optimizer.lr=0.01',
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'default_hooks.checkpoint.interval={epochs}',
        'default_hooks.logger.interval=1', 'randomness.seed=0',
        'randomness.deterministic=True'
    ]


def write_table(out, seg_metrics, epochs, crop):
    lines = [
        f'| LIDC nodule segmentation, held-out crops ({crop}^3, '
        f'{epochs} epochs) | dice_per_case | dice_global |', '|---|---|---|'
    ]
    names = dict(scratch='Scratch', svd='SVD-Net (VDT pre-trained)')
    for name, m in seg_metrics.items():
        lines.append(f'| {names[name]} | {m["dice_per_case"]:.4f} | '
                     f'{m["dice_global"]:.4f} |')
    table = '\n'.join(lines)
    with open(osp.join(out, 'report.md'), 'w') as f:
        f.write('# svd_mm demo\n\n' + table + '\n\n'
                '![training curves](training_curves.png)\n')
    return table


def make_pictures(out, seg_dirs, options, epochs):
    """Training curves of both runs; overlays of predicted vs. true lesion
    on the held-out CT crops for both models."""
    import numpy as np
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, DefaultScope

    from svd_mm.apis import init_model
    from svd_mm.visualization.overlay import plot_volume_overlay
    from svd_mm.visualization.training_curves import plot_training_curves

    files = dict(curves=plot_training_curves(
        {k: v
         for k, v in seg_dirs.items()},
        osp.join(out, 'training_curves.png'),
        title='LIDC nodule segmentation: SVD-Net vs scratch'))
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    overrides = parser.parse_args(['--o', *options]).o
    for name, config in SEG_ROWS.items():
        cfg = Config.fromfile(osp.join(REPO, config))
        cfg.merge_from_dict(overrides)
        model = init_model(
            cfg,
            osp.join(seg_dirs[name], f'epoch_{epochs}.pth'),
            device='cpu')
        with DefaultScope.overwrite_default_scope('mmseg'):
            dataset = DATASETS.build(cfg.test_dataloader.dataset)
        for i in range(len(dataset)):
            sample = dataset[i]
            gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
            if not gt.any():
                continue  # background crops: nothing to outline
            with torch.no_grad():
                pred = model.test_step(pseudo_collate([sample]))[0]
            pred = pred.pred_sem_seg.data[0].cpu().numpy()
            image = sample['inputs'][0].float().numpy()
            case = sample['data_samples'].metainfo.get('case_id', i)
            files[f'overlay_{name}_{case}'] = plot_volume_overlay(
                image,
                np.eye(4),
                osp.join(out, f'overlay_{name}_{case}.png'),
                pred=pred,
                gt=gt,
                class_names=('background', 'nodule'),
                title=f'{name}: predicted (solid) vs true (dashed), {case}',
                unit='uint8')
    return files


def finetune_forward(backbone_ckpt):
    import numpy as np
    import torch
    from mmengine.registry import MODELS

    import svd_mm  # noqa: F401
    from svd_mm.utils.medical_io import read_volume
    from svd_mm.utils.volume_io import LIDC_RELEASE_WINDOW
    from tests.helpers.data_cache import fetch_pyradiomics_ct

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
    vol = read_volume(case['image']).array  # (z, y, x), float32
    mask = read_volume(case['label'], dtype=np.uint8).array
    zc, yc, xc = [int(np.mean(a)) for a in np.nonzero(mask)]
    z0 = min(max(zc - 16, 0), vol.shape[0] - 32)
    patch = vol[z0:z0 + 32, yc - 32:yc + 32, xc - 32:xc + 32]
    low, high = LIDC_RELEASE_WINDOW  # [-1024, 400] HU to [-1, 1]
    x = torch.from_numpy((np.clip(patch, low, high) - (low + high) / 2) /
                         ((high - low) / 2))
    model.eval()
    with torch.no_grad():
        feats = model(x[None, None].float())
    return dict(
        transferred_tensors=f'{same}/{len(sd)}',
        feature_shapes=[list(f.shape) for f in feats])


if __name__ == '__main__':
    main()
