"""Write the paper's numbers from the metafiles into config headers and the
configs READMEs, or check that they are there (``--check``).

The metafiles (``configs/**/metafile.yml``, imported by ``model-index.yml``)
are the one place where the paper's numbers are typed. This tool copies
them into

- each config's header, as a ``# Paper: ...`` block at the end of its
  leading comment (continuation lines start with ``#   ``);
- the last cell of each table row of ``configs/**/README.md`` that names one
  config file, in tables whose last column is headed ``paper...``.

Examples::

    python tools/misc/sync_paper_numbers.py           # rewrite
    python tools/misc/sync_paper_numbers.py --check   # exit 1 if out of date
"""
import argparse
import glob
import os.path as osp
import re
import sys
import textwrap
from typing import Dict, List, Optional

from svd_mm.utils.paper_results import (METRIC_KEYS, load_model_index,
                                        paper_text)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PREFIX, CONT, WIDTH = '# Paper: ', '#   ', 79
_VALUE = re.compile('(?:' + '|'.join(map(re.escape, [*METRIC_KEYS, 'p'])) +
                    r') [0-9.]+(?: ± [0-9.]+)?')


def header_block(entry: dict) -> List[str]:
    """The ``# Paper: ...`` lines of a config header."""
    # never break inside "<metric> <value> ± <std>"
    text = _VALUE.sub(lambda m: m.group(0).replace(' ', '\xa0'),
                      paper_text(entry))
    lines = textwrap.wrap(
        text,
        WIDTH,
        initial_indent=PREFIX,
        subsequent_indent=CONT,
        break_on_hyphens=False,
        break_long_words=False)
    return [line.replace('\xa0', ' ') for line in lines]


def sync_header(text: str, entry: dict) -> str:
    """``text`` (a config file) with its paper block written anew."""
    lines = text.split('\n')
    start = next((i for i, line in enumerate(lines)
                  if line.startswith(PREFIX)), None)
    if start is None:
        # the end of the leading comment block
        start = end = next(i for i, line in enumerate(lines)
                           if not line.startswith('#'))
    else:
        end = start + 1
        while end < len(lines) and lines[end].startswith(CONT):
            end += 1
    return '\n'.join(lines[:start] + header_block(entry) + lines[end:])


def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


def sync_readme(text: str, models: Dict[str, dict]) -> str:
    """``text`` (a README) with the paper cell of each config row rewritten.
    """
    out, paper_table = [], False
    name_re = re.compile(r'([A-Za-z0-9_.-]+)\.py')
    lines = text.split('\n')
    for i, line in enumerate(lines):
        if line.startswith('|'):
            nxt = lines[i + 1] if i + 1 < len(lines) else ''
            if re.match(r'^\|[\s:|-]+\|$', nxt.strip()):  # a header row
                paper_table = _cells(line)[-1].lower().startswith('paper')
            elif paper_table:
                names = {n for n in name_re.findall(line) if n in models}
                if len(names) == 1:
                    cells = _cells(line)
                    cells[-1] = paper_text(models[names.pop()]).replace(
                        '|', '\\|')
                    line = '| ' + ' | '.join(cells) + ' |'
        out.append(line)
    return '\n'.join(out)


def planned_changes(models: Dict[str, dict]) -> Dict[str, str]:
    """Path -> new text, for every file whose text would change."""
    changes = {}
    for name, entry in models.items():
        path = osp.join(REPO, entry['Config'])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f"{entry['Metafile']}: {name} points to {entry['Config']}, "
                'which does not exist')
        with open(path, encoding='utf-8') as f:
            text = f.read()
        new = sync_header(text, entry)
        if new != text:
            changes[path] = new
    for path in sorted(
            glob.glob(osp.join(REPO, 'configs', '**', 'README.md'),
                      recursive=True)):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        new = sync_readme(text, models)
        if new != text:
            changes[path] = new
    return changes


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 and list the files that are out of date')
    args = parser.parse_args(argv)
    changes = planned_changes(load_model_index(REPO))
    for path in changes:
        print(('out of date: ' if args.check else 'updated: ') +
              osp.relpath(path, REPO))
    if args.check:
        return 1 if changes else 0
    for path, text in changes.items():
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
