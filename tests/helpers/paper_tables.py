"""Read the transcription of the paper's tables, ``PAPER_TABLES.md``.

The project keeps the paper's numbers, table by table, in
``../shared/PAPER_TABLES.md`` beside the checkout. The tests check the
metafiles (``configs/**/metafile.yml``) against it, so a number typed into a
metafile is compared with the transcription it came from.
"""
import os.path as osp
from typing import Dict, List, Optional

__all__ = ['find_paper_tables', 'parse_paper_tables', 'split_pm']


def find_paper_tables(repo: str) -> Optional[str]:
    """``PAPER_TABLES.md`` in the ``shared/`` folder beside (or inside) the
    checkout ``repo``, or None."""
    for folder in (osp.join(repo, '..', 'shared'), osp.join(repo, 'shared')):
        path = osp.join(folder, 'PAPER_TABLES.md')
        if osp.isfile(path):
            return osp.normpath(path)
    return None


def parse_paper_tables(path: str) -> Dict[str, List[Dict[str, str]]]:
    """The Markdown tables of ``path``, by section.

    Args:
        path (str): ``PAPER_TABLES.md``.

    Returns:
        dict[str, list[dict[str, str]]]: Section title up to its first
        ``' —'`` (e.g. ``'Table IV'``) -> one dict per table row, keyed by
        the header cells; bold marks are removed from the cells.
    """
    sections: Dict[str, List[Dict[str, str]]] = {}
    current, header = None, None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('## '):
                current = line[3:].split(' —')[0].strip()
                sections[current], header = [], None
            elif current and line.startswith('|'):
                cells = [c.strip() for c in line.strip('|').split('|')]
                if header is None:
                    header = cells
                elif not set(''.join(cells)) <= set('-: '):
                    cells = [c.replace('**', '') for c in cells]
                    sections[current].append(dict(zip(header, cells)))
    return sections


def split_pm(cell: str) -> tuple:
    """``'92.75 ± 0.58'`` -> ``(92.75, 0.58)``; ``'74.18'`` -> ``(74.18,
    None)``."""
    value, _, std = cell.partition('±')
    return float(value), (float(std) if std.strip() else None)
