"""The runtime package holds runtime code only: test-data builders and the
fetcher that runs ``pip download`` live in :mod:`svd_mm.testing`, which no
runtime module imports."""
import ast
import pathlib

import svd_mm

PACKAGE = pathlib.Path(svd_mm.__file__).parent


def _runtime_modules():
    return sorted(p for p in PACKAGE.rglob('*.py')
                  if 'testing' not in p.relative_to(PACKAGE).parts)


def _imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ''


def test_runtime_modules_do_not_import_testing_or_call_pip():
    modules = _runtime_modules()
    assert len(modules) > 50
    offenders = []
    for path in modules:
        source = path.read_text()
        tree = ast.parse(source)
        imports = set(_imported(tree))
        if any(name.startswith('svd_mm.testing') for name in imports):
            offenders.append(f'{path.name}: imports svd_mm.testing')
        if 'pip' in imports:
            offenders.append(f'{path.name}: imports pip')
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == 'pip':
                offenders.append(f'{path.name}:{node.lineno}: calls pip')
    assert not offenders, offenders


def test_the_fetcher_lives_in_testing():
    """The check above can fail: the test-data fetcher itself calls pip."""
    source = (PACKAGE / 'testing' / 'data_cache.py').read_text()
    tree = ast.parse(source)
    assert any(
        isinstance(node, ast.Constant) and node.value == 'pip'
        for node in ast.walk(tree))
