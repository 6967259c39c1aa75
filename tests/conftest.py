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
