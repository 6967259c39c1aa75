"""Launch helpers shared by ``tools/train.py`` and ``tools/test.py``, and
inference on a user's volumes (inferencers, ``tools/infer.py``)."""
from . import inference, inferencers, launch, quiet
from .inference import *  # noqa: F401,F403
from .inferencers import *  # noqa: F401,F403
from .launch import *  # noqa: F401,F403
from .quiet import *  # noqa: F401,F403

__all__ = (
    launch.__all__ + inferencers.__all__ + inference.__all__ + quiet.__all__)
