"""The paper's numbers, read from the OpenMMLab metafiles of ``configs/``.

Each config folder has a ``metafile.yml`` (``Collections`` / ``Models``, as
in mmdet and mmpretrain) and the repository root a ``model-index.yml`` that
imports them. A model entry is named after its config file; its
``Results`` hold the paper's values for that table row (``Metrics``, and
``Std`` and ``p-value`` where the paper prints them), or its
``Metadata['Paper Result']`` says why there are none (``not reported ...``).
The config headers, ``configs/README.md`` and ``tools/analysis/summarize.py
--paper`` all read the numbers from here, so each is written down once.

Metric names are the paper's (``AUC``, ``Dice per case``, ``mFROC``);
:data:`METRIC_KEYS` maps each to the key svd_mm's evaluator writes and the
factor that turns the evaluator's value into the paper's unit (the paper
prints percentages, the binary, Dice and FROC metrics give fractions).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import yaml

__all__ = [
    'METRIC_KEYS', 'load_model_index', 'find_model', 'paper_metrics',
    'paper_text'
]

# paper metric name -> (evaluator key, factor from evaluator value to paper)
METRIC_KEYS: Dict[str, Tuple[str, float]] = {
    'Top 1 Accuracy': ('accuracy/top1', 1.),
    'Top 5 Accuracy': ('accuracy/top5', 1.),
    'box AP': ('coco/bbox_mAP', 100.),
    'Accuracy': ('binary/accuracy', 100.),
    'AUC': ('binary/auc', 100.),
    'F1': ('binary/f1', 100.),
    'Precision': ('binary/precision', 100.),
    'Sensitivity': ('binary/sensitivity', 100.),
    'Specificity': ('binary/specificity', 100.),
    'Dice': ('dice_per_case', 100.),
    'Dice per case': ('dice_per_case', 100.),
    'Sensitivity@0.5FP': ('froc/sens@0.5', 100.),
    'Sensitivity@1FP': ('froc/sens@1', 100.),
    'Sensitivity@2FP': ('froc/sens@2', 100.),
    'Sensitivity@4FP': ('froc/sens@4', 100.),
    'mFROC': ('froc/mFROC', 100.),
}

# the paper prints the COCO mAP with one decimal, everything else with two
_DIGITS = {'box AP': 1}


def repo_root() -> str:
    """The repository root (the folder holding ``model-index.yml``)."""
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_model_index(root: Optional[str] = None) -> Dict[str, dict]:
    """Every model entry of the metafiles that ``model-index.yml`` imports.

    Args:
        root (str, optional): Repository root. Defaults to None (this
            checkout).

    Returns:
        dict[str, dict]: Model name (the config file stem) -> its entry,
        with the key ``Metafile`` added (the metafile's path).
    """
    root = root or repo_root()
    with open(osp.join(root, 'model-index.yml'), encoding='utf-8') as f:
        imports = yaml.safe_load(f)['Import']
    models = {}
    for rel in imports:
        path = osp.join(root, rel)
        with open(path, encoding='utf-8') as f:
            meta = yaml.safe_load(f)
        for entry in meta.get('Models') or []:
            name = entry['Name']
            if name in models:
                raise ValueError(f'model {name!r} is listed in both '
                                 f"{models[name]['Metafile']} and {rel}")
            models[name] = dict(entry, Metafile=rel)
    return models


def find_model(config: str,
               models: Optional[Dict[str, dict]] = None) -> dict:
    """The metafile entry of a config (a path, or the file stem).

    Raises:
        KeyError: No entry has that name.
    """
    models = load_model_index() if models is None else models
    name = osp.splitext(osp.basename(config))[0]
    if name not in models:
        raise KeyError(f'{config!r} has no entry in the metafiles of '
                       'model-index.yml (the entry name is the config file '
                       'name without .py)')
    return models[name]


def paper_metrics(entry: dict) -> Dict[str, dict]:
    """The paper's values of a metafile entry, by evaluator key.

    Returns:
        dict[str, dict]: Evaluator key (e.g. ``binary/auc``) ->
        ``dict(name, value, std, p, scale, digits)``; ``std`` and ``p`` are
        None where the paper prints none, ``scale`` turns the evaluator's
        value into the paper's unit. Empty for a row the paper does not
        report.
    """
    out = {}
    for result in entry.get('Results') or []:
        stds = result.get('Std') or {}
        p_metric = _p_metric(result)
        for name, value in result['Metrics'].items():
            if name not in METRIC_KEYS:
                raise KeyError(f"{entry['Name']}: metric {name!r} of the "
                               f'metafile is not one of {list(METRIC_KEYS)}')
            key, scale = METRIC_KEYS[name]
            p = result['p-value'] if name == p_metric else None
            out[key] = dict(
                name=name, value=float(value),
                std=None if name not in stds else float(stds[name]),
                p=None if p is None else float(p), scale=scale,
                digits=_DIGITS.get(name, 2))
    return out


def _p_metric(result: dict) -> Optional[str]:
    """The metric the paper's t-test p-value belongs to: AUC in the
    classification table (Table IV), else the table's only metric."""
    if result.get('p-value') is None:
        return None
    names = list(result['Metrics'])
    if 'AUC' in names:
        return 'AUC'
    return names[0] if len(names) == 1 else None


def paper_text(entry: dict) -> str:
    """One line for a config header or a README cell.

    E.g. ``Table IV "Scratch": AUC 92.75 ± 0.58, ..., p 0.00`` or
    ``not reported (...)``.
    """
    meta = entry['Metadata']
    if 'Paper Result' in meta:
        return str(meta['Paper Result'])
    parts: List[str] = []
    for result in entry['Results']:
        stds = result.get('Std') or {}
        for name, value in result['Metrics'].items():
            digits = _DIGITS.get(name, 2)
            std = f' ± {float(stds[name]):.{digits}f}' if name in stds else ''
            parts.append(f'{name} {float(value):.{digits}f}{std}')
        if result.get('p-value') is not None:
            parts.append(f"p {float(result['p-value']):.2f}")
    table = meta['Paper Table']
    where = table if table.startswith('Sec.') else f'Table {table}'
    text = f'{where} "{meta["Paper Row"]}": ' + ', '.join(parts)
    if meta.get('Paper Note'):
        text += f' ({meta["Paper Note"]})'
    return text
