"""Run a trained svd_mm model on one CT / MR volume.

Segmentation (mmseg configs, e.g. LiTS): a label mask in the input's
geometry (same shape and affine, as NIfTI, whatever the input format)::

    python tools/infer.py CONFIG CHECKPOINT ct.nrrd --out results/ct \\
        [--overlay] [--gt ct_label.nrrd]

Detection (mmdet slice-stack configs, e.g. DeepLesion): the boxes of every
key slice (or of ``--slices``), each with its stack of neighbouring
slices, as JSON and CSV with the slice index and RAS millimetres::

    python tools/infer.py CONFIG CHECKPOINT dicom_folder/ --out results/ct \\
        --slices 20 21 22 --overlay

INPUT: a NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``), MetaImage
(``.mhd`` / ``.mha``) file, a DICOM file or a folder of one DICOM series
(``--series-uid`` picks one of several). The volume goes through the
config's own test pipeline (its HU window / normalisation), see
:mod:`svd_mm.apis.inferencers` (``VolumeSegInferencer`` and
``VolumeDetInferencer``, the Python API). A segmentation config whose
test pipeline crops (e.g. the LIDC configs, 48^3 crops) runs over the whole
volume with a crop-sized sliding window, ``--overlap`` apart (default
0.5). Written to ``--out``:

- ``<name>_seg.nii.gz`` (segmentation) or ``<name>_boxes.json`` and
  ``<name>_boxes.csv`` (detection);
- with ``--overlay``: ``<name>_overlay.png`` (axial, coronal and sagittal
  planes with the mask, and the ``--gt`` mask dashed) or one
  ``<name>_sliceNNN.png`` per slice with boxes;
- ``<name>_result.json``: input geometry, classes, volumes in mL / Dice
  (segmentation) and the paths written.
"""
import argparse
import json
import pickle
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Segment or detect on one volume (NIfTI, NRRD, '
        'MetaImage or DICOM) with an mmseg / mmdet config and checkpoint')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        'input', help='volume file (.nii, .nii.gz, .nrrd, .mhd, .mha, .dcm) '
        'or DICOM series folder')
    parser.add_argument(
        '--out', required=True, help='folder for the results')
    parser.add_argument(
        '--device',
        default=None,
        help='device, e.g. cpu or cuda:0 (default: cuda:0 if available)')
    parser.add_argument(
        '--overlay', action='store_true', help='also write PNG pictures')
    parser.add_argument(
        '--gt',
        default=None,
        help='true label mask on the input grid, drawn dashed in the '
        'pictures and scored with Dice (segmentation)')
    parser.add_argument(
        '--slices',
        type=int,
        nargs='+',
        default=None,
        help='key slices (0-based indices along the slice axis) to detect '
        'on (default: every slice)')
    parser.add_argument(
        '--series-uid',
        default=None,
        help='SeriesInstanceUID to read from a DICOM folder holding several')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=4,
        help='slice stacks per forward pass (detection)')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.5,
        help='smallest score of the boxes drawn in the pictures (the '
        'JSON / CSV keep every box)')
    parser.add_argument(
        '--window',
        nargs='+',
        default=None,
        help='display window of the pictures: a preset (lung, mediastinum, '
        'soft_tissue, liver, bone, brain) or CENTRE WIDTH in HU, e.g. '
        '--window -600 1500 (default: the window the model sees)')
    parser.add_argument(
        '--overlap',
        type=float,
        default=0.5,
        help='overlap of the sliding windows, in [0, 1), when a '
        'segmentation config\'s test pipeline crops (e.g. LIDC): the model '
        'then slides a crop-sized window over the whole volume')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, xxx=yyy format')
    from svd_mm.apis.quiet import add_verbose_argument
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def _window(values):
    if values is None:
        return None
    if len(values) == 1:
        return values[0]
    if len(values) != 2:
        sys.exit('error: --window takes a preset or CENTRE WIDTH, got '
                 f'{" ".join(values)}')
    try:
        return (float(values[0]), float(values[1]))
    except ValueError:
        sys.exit(f'error: --window CENTRE WIDTH must be numbers, got '
                 f'{" ".join(values)}')


def main(argv=None):
    args = parse_args(argv)
    from svd_mm.apis import filter_known_warnings, inference_volume
    filter_known_warnings(args.verbose)
    try:
        result = inference_volume(
            args.config,
            args.checkpoint,
            args.input,
            out_dir=args.out,
            device=args.device,
            overlay=args.overlay,
            gt_path=args.gt,
            slices=args.slices,
            series_uid=args.series_uid,
            batch_size=args.batch_size,
            score_thr=args.score_thr,
            window=_window(args.window),
            overlap=args.overlap,
            cfg_options=args.cfg_options)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError,
            pickle.UnpicklingError) as e:
        sys.exit(f'error: {e}')
    volume = result['volume']
    print(f'input: {volume} ({result["seconds"]:.1f} s)')
    if result['task'] == 'seg':
        for name, ml in result['volume_ml'].items():
            print(f'{name}: {result["voxels"][name]} voxels, {ml:.2f} mL')
        if 'dice' in result:
            print(f'Dice with {args.gt}: {result["dice"]:.4f}')
    else:
        dets = result['detections']
        shown = [d for d in dets if d['score'] >= args.score_thr]
        print(f'{len(dets)} boxes on {len(result["key_slices"])} key '
              f'slices, {len(shown)} with score >= {args.score_thr:g}')
    print('wrote: ' + json.dumps(result['files'], indent=1))


if __name__ == '__main__':
    main()
