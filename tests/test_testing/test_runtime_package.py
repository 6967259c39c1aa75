"""svd_mm/ is the runtime package only: no module under it calls pip or
builds test data. The test and demo data builders live in
:mod:`tests.helpers` (outside the installed package) and are fetched from
the registry by ``tools/misc/fetch_test_data.py``, which
:mod:`tests.helpers.data_cache` calls."""
import ast
import pathlib
import subprocess
import sys

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


def test_runtime_modules_do_not_import_tests():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob('*.py')) if any(
            name == 'tests' or name.startswith('tests.')
            for name in _imported(ast.parse(path.read_text())))
    ]
    assert not offenders, offenders


def test_installed_package_is_svd_mm_only(tmp_path):
    """setup.py packages svd_mm and its subpackages, not tests.helpers (a
    package now that tests/ has an __init__.py)."""
    subprocess.run(
        [sys.executable, 'setup.py', '-q', 'egg_info', '--egg-base',
         str(tmp_path)], cwd=PACKAGE.parent, check=True, capture_output=True)
    info = tmp_path / 'svd_mm.egg-info'
    assert (info / 'top_level.txt').read_text().split() == ['svd_mm']
    sources = (info / 'SOURCES.txt').read_text().split()
    assert 'svd_mm/apis/inference.py' in sources
    assert not [s for s in sources if s.startswith('tests/helpers/')]
    assert not (PACKAGE / 'testing').exists()


def test_the_fetch_tool_calls_pip():
    """The check above can fail: the tool that fetches the data does."""
    assert _calls_pip(ast.parse(TOOL.read_text()))
