"""Extract the backbone weights of an mmpretrain / mmdet / mmseg checkpoint.

Example:
    Keep ``backbone.*`` of an SVD-Net pre-training checkpoint, so that a
    fine-tuning config can load it with
    ``init_cfg=dict(type='Pretrained', checkpoint=DST)`` (no prefix)::

        python tools/model_converters/extract_backbone.py \\
            work_dirs/vdt_r3d18_8xb32-100e_in1k/epoch_100.pth \\
            checkpoints/r3d18-svd-in1k_backbone.pth

    The same for the semantic-segmentation pre-training (mmseg, iteration
    checkpoints; ``neck.*`` (GTM), ``decode_head.*`` and
    ``auxiliary_head.*`` are dropped)::

        WORK_DIR=work_dirs/upernet_r3d18_gtm_4xb4-160k_ade20k-512x512
        python tools/model_converters/extract_backbone.py \\
            $WORK_DIR/iter_160000.pth \\
            checkpoints/r3d18-svd-ade20k-seg_backbone.pth

The source is loaded with ``torch.load(weights_only=True)`` (through
mmengine's ``CheckpointLoader`` and svd_mm's allow-list), a leading
``module.`` is stripped, the keys under ``--prefix`` are kept without it and
saved as ``{'state_dict': ..., 'meta': {'source', 'prefix', 'num_params'}}``.
``num_params`` counts the values of all kept tensors (parameters and
buffers). The file is written next to ``dst`` under a temporary name and
renamed, so an interrupted run leaves no partial checkpoint.
"""
import argparse
import os.path as osp
import pickle
import sys
from collections import Counter

import svd_mm  # noqa: F401  (allow-list and safe checkpoint loader)
from svd_mm.models.utils import read_state_dict, select_prefix
from svd_mm.utils.checkpoint_safety import save_checkpoint_atomic


def parse_args():
    parser = argparse.ArgumentParser(
        description='Keep only the backbone weights of a checkpoint, with '
        'the prefix removed.')
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='path of the new checkpoint')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='prefix of the kept keys, removed in the output '
        '(default: backbone.)')
    return parser.parse_args()


def extract_backbone(src: str, dst: str, prefix: str = 'backbone.') -> dict:
    """Write the tensors of ``src`` under ``prefix`` to ``dst``.

    Args:
        src (str): Source checkpoint.
        dst (str): Path of the new checkpoint.
        prefix (str): Prefix of the kept keys. Defaults to 'backbone.'.

    Returns:
        dict: ``kept`` and ``dropped`` (numbers of tensors), ``dropped_
        prefixes`` (top-level name to number of dropped tensors) and the
        written ``meta``.
    """
    state_dict = read_state_dict(src, map_location='cpu', logger='silent')
    kept = select_prefix(state_dict, prefix, src)
    if not prefix.endswith('.'):
        prefix += '.'
    dropped = Counter(
        k.split('.', 1)[0] for k in state_dict if not k.startswith(prefix))
    meta = dict(
        source=osp.basename(src),
        prefix=prefix,
        num_params=sum(v.numel() for v in kept.values()))
    save_checkpoint_atomic(dict(state_dict=kept, meta=meta), dst)
    return dict(
        kept=len(kept),
        dropped=sum(dropped.values()),
        dropped_prefixes=dict(dropped),
        meta=meta)


def main():
    args = parse_args()
    try:
        result = extract_backbone(args.src, args.dst, args.prefix)
    except (FileNotFoundError, ValueError, pickle.UnpicklingError) as e:
        sys.exit(f'error: {e}')
    meta = result['meta']
    print(f'kept {result["kept"]} tensors ({meta["num_params"]} values) '
          f'under {meta["prefix"]!r}')
    dropped = ', '.join(f'{name} ({num})'
                        for name, num in result['dropped_prefixes'].items())
    print(f'dropped {result["dropped"]} tensors' +
          (f': {dropped}' if dropped else ''))
    print(f'saved to {args.dst}')


if __name__ == '__main__':
    main()
