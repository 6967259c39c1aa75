"""Suite-wide isolation.

mmengine keeps the default scope in a global (``DefaultScope``'s instance
dict; the current scope is the last instance created). A test or a
module-scoped fixture that builds a Runner or calls
``init_default_scope('mmseg')`` would otherwise leave that scope current for
every later test, and registries would then look names up in the wrong
toolbox (e.g. mmpretrain's ``CrossEntropyLoss`` for an mmseg head). Every
test body starts, and every test ends, with the scopes of the session start.
"""
import pytest
from mmengine.registry import DefaultScope

_SESSION_SCOPES = DefaultScope._instance_dict.copy()


def _reset_scopes():
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(_SESSION_SCOPES)


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    _reset_scopes()
    yield
    _reset_scopes()


# Files that take a minute or more on 2 cores. `make test` runs the suite on
# two xdist workers, one file per worker at a time (--dist loadfile), in
# collection order: starting with these lets both workers finish together
# instead of one waiting for the other's last long file.
_SLOW_FILES = (
    'test_tools/test_demo.py',
    'test_tools/test_summarize.py',
    'test_tools/test_dist_and_resume.py',
    'test_configs/test_lidc.py',
    'test_benchmarks/test_sliding_window.py',
    'test_configs/test_deeplesion.py',
    'test_configs/test_lits.py',
    'test_tools/test_train_test_tools.py',
    'test_tools/test_infer.py',
)


def pytest_collection_modifyitems(session, config, items):
    tests_dir = session.config.rootpath / 'tests'

    def rank(item):
        try:
            rel = item.path.relative_to(tests_dir).as_posix()
        except ValueError:
            return len(_SLOW_FILES)
        return (_SLOW_FILES.index(rel)
                if rel in _SLOW_FILES else len(_SLOW_FILES))

    items.sort(key=rank)  # stable: each file keeps its order
