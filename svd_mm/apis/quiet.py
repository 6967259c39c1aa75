"""Keep the command-line tools' output to mmengine's log and the result:
each tool calls :func:`filter_known_warnings` right after parsing its
arguments, which hides the third-party warnings about the toolboxes' own
upgrade path (:data:`KNOWN_WARNINGS`); its ``--verbose`` shows them all.
"""
import argparse
import os
import sys
import warnings

__all__ = ['KNOWN_WARNINGS', 'add_verbose_argument', 'filter_known_warnings']

#: (message regex, category) of the third-party warnings the tools hide:
#: setuptools' (imported by mmengine whenever a config names a toolbox
#: scope), mmseg's (for every 3D segmentation head) and mmcv's.
KNOWN_WARNINGS = (
    (r'pkg_resources is deprecated as an API', UserWarning),
    (r'``build_loss`` would be deprecated soon', UserWarning),
    (r'Default ``avg_non_ignore`` is False', UserWarning),
    (r'For binary segmentation, we suggest using', UserWarning),
    (r'``MultiScaleDeformableAttention`` has been moved', ImportWarning),
)


def filter_known_warnings(verbose: bool = False) -> None:
    """Hide :data:`KNOWN_WARNINGS` in this process (and the worker
    processes it forks), or with ``verbose`` show every warning once per
    place, in this process and (through ``PYTHONWARNINGS``) in the tools it
    starts. Warning options given by the user (``python -W``,
    ``PYTHONWARNINGS``) are left as they are.

    Args:
        verbose (bool): Show everything instead. Defaults to False.
    """
    if sys.warnoptions:
        return
    if verbose:
        os.environ['PYTHONWARNINGS'] = 'default'
        warnings.simplefilter('default')
        return
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """Add the tools' ``--verbose`` flag (see :func:`filter_known_warnings`).
    """
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show every warning (known third-party deprecation warnings '
        'are hidden by default)')
