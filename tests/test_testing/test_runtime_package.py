"""No module under svd_mm/ calls pip: the test and demo data are fetched
from the registry by ``tools/misc/fetch_test_data.py``, which
:mod:`svd_mm.testing.data_cache` calls; no runtime module imports
:mod:`svd_mm.testing`."""
import ast
import pathlib

import svd_mm

PACKAGE = pathlib.Path(svd_mm.__file__).parent
TOOL = PACKAGE.parent / 'tools' / 'misc' / 'fetch_test_data.py'


def _imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ''


def _calls_pip(tree) -> bool:
    """Whether the code imports pip or passes 'pip' as a program argument
    (``python -m pip ...``)."""
    return 'pip' in set(_imported(tree)) or any(
        isinstance(node, ast.Constant) and node.value == 'pip'
        for node in ast.walk(tree))


def test_no_module_of_svd_mm_calls_pip():
    modules = sorted(PACKAGE.rglob('*.py'))
    assert len(modules) > 60
    offenders = [
        str(path.relative_to(PACKAGE)) for path in modules
        if _calls_pip(ast.parse(path.read_text()))
    ]
    assert not offenders, offenders


def test_runtime_modules_do_not_import_testing():
    offenders = []
    for path in sorted(PACKAGE.rglob('*.py')):
        if 'testing' in path.relative_to(PACKAGE).parts:
            continue
        imports = set(_imported(ast.parse(path.read_text())))
        if any(name.startswith('svd_mm.testing') for name in imports):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders, offenders


def test_the_fetch_tool_calls_pip():
    """The check above can fail: the tool that fetches the data does."""
    assert _calls_pip(ast.parse(TOOL.read_text()))
