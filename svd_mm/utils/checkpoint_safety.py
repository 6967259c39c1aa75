"""Load mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6, :func:`torch.load` defaults to ``weights_only=True``: the
unpickler only rebuilds tensors, plain containers and the globals that were
allow-listed with :func:`torch.serialization.add_safe_globals`. mmengine
0.10.7 still writes a few other objects into its checkpoints, so resuming a
training run fails with a long generic error. Switching ``weights_only`` off
is not an option: unpickling a file from an unknown source can then run any
code.

:func:`register_safe_checkpoint_types` (called by ``import svd_mm``) instead
allow-lists exactly the globals that mmengine's ``Runner`` writes, found by
training a small ``Runner`` (SGD/AdamW, LinearLR, CosineAnnealingLR,
MultiStepLR, PolyLR, gradient clipping, ``EMAHook``, ``save_best``) and
listing :func:`torch.serialization.get_unsafe_globals_in_checkpoint` of its
files (numpy 2.3): ``HistoryBuffer`` (``message_hub.log_scalars``); numpy's
``ndarray``, ``dtype`` and ``_reconstruct`` (the buffers' histories) and
``scalar`` (``eta``, ``best_score``); the dtype classes ``Float64DType``,
``Float32DType`` and ``Int64DType`` (set up with ``BUILD``, so torch's scan
misses them, but loading needs them); and ``builtins.getattr``, with which
``HistoryBuffer`` pickles its statistics ``min``, ``max``, ``current`` and
``mean``.

``builtins.getattr`` itself is *not* allow-listed (it would let a file read
any attribute of any allow-listed object): the name is mapped to
:func:`_history_buffer_getattr`, which returns only those four methods. The
numpy helpers are also registered under their numpy 1.x names
(``numpy.core.multiarray.*``), so checkpoints written with numpy < 2 load
too. Nothing else is added: a scheduler that pickles itself (e.g.
mmengine's ``OneCycleParamScheduler``, whose state holds a bound method) or
a checkpoint with other Python objects is refused.

The weights released with SVD-Net (mmcls 0.x) and MP3D (mmdet 2.x), saved
by mmcv 1.x, need nothing more: their ``meta`` is text, numbers, tuples of
str and at most numpy scalars (``best_score``), covered above; a file that
pickles a config object instead of its text is refused.

:func:`load_from_local_safe` replaces the local-file loader of mmengine's
:class:`~mmengine.runner.CheckpointLoader`, so that a refusal names the file
and the offending globals (:class:`UnsafeCheckpointError`).
"""
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from .volume_io import atomic_output

__all__ = [
    'UnsafeCheckpointError', 'SAFE_CHECKPOINT_GLOBALS',
    'register_safe_checkpoint_types', 'load_from_local_safe',
    'save_checkpoint_atomic'
]

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# The statistics that ``HistoryBuffer`` registers by default; a checkpoint
# pickles each of them as ``getattr(HistoryBuffer, name)``.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that ``weights_only=True`` may not build.

    A subclass of :class:`pickle.UnpicklingError` (what :func:`torch.load`
    raises in that case), so code that catches the latter keeps working.

    Args:
        filename (str): The checkpoint file.
        unsafe_globals (list[str]): The globals of the file that are not
            allow-listed, as listed by
            :func:`torch.serialization.get_unsafe_globals_in_checkpoint`.
        reason (str): The message of the underlying unpickling error.
    """

    def __init__(self, filename: str, unsafe_globals: List[str],
                 reason: str) -> None:
        self.filename = filename
        self.unsafe_globals = list(unsafe_globals)
        self.reason = reason
        if unsafe_globals:
            found = ('it contains globals that are not allow-listed for '
                     f'torch.load(weights_only=True): '
                     f'{", ".join(unsafe_globals)}')
            allow = ', '.join(unsafe_globals)
        else:
            found = ('torch.load(weights_only=True) refused an object in it: '
                     f'{reason}')
            allow = '<the class or function named above>'
        super().__init__(
            f'Refusing to load checkpoint {filename!r}: {found}. Unpickling '
            'them could run arbitrary code. If you trust this file (verify '
            'where it came from), allow-list exactly these globals before '
            f'loading it: torch.serialization.add_safe_globals([{allow}]). '
            'Do not set weights_only=False.')

    def __reduce__(self):
        # rebuild from the constructor's arguments (e.g. across processes)
        return (type(self), (self.filename, self.unsafe_globals, self.reason))


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``builtins.getattr`` restricted to the statistics of HistoryBuffer.

    Args:
        obj (Any): Must be the class :class:`mmengine.logging.HistoryBuffer`.
        name (str): One of ``'min'``, ``'max'``, ``'current'``, ``'mean'``.

    Returns:
        Callable: The function ``HistoryBuffer.<name>``.
    """
    if obj is not HistoryBuffer or name not in _HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            'builtins.getattr is only allow-listed for the statistics '
            f'{_HISTORY_BUFFER_STATISTICS} of mmengine HistoryBuffer, got '
            f'getattr({obj!r}, {name!r})')
    return getattr(obj, name)


def _numpy_globals() -> List[SafeGlobal]:
    """The numpy helpers and dtype classes that mmengine checkpoints need."""
    # Taken from what numpy itself pickles, so the right module is used on
    # any numpy version (numpy._core in 2.x).
    reconstruct = np.array(0.).__reduce__()[0]
    scalar = np.float64(0.).__reduce__()[0]
    entries: List[SafeGlobal] = [np.ndarray, np.dtype, reconstruct, scalar]
    # the same functions under the names numpy 1.x writes
    for func in (reconstruct, scalar):
        legacy = f'numpy.core.multiarray.{func.__name__}'
        if f'{func.__module__}.{func.__name__}' != legacy:
            entries.append((func, legacy))
    dtypes = ('float64', 'float32', 'int64')
    return entries + [type(np.dtype(name)) for name in dtypes]


SAFE_CHECKPOINT_GLOBALS: Tuple[SafeGlobal, ...] = (
    HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
    *_numpy_globals())


def _torch_reason(message: str) -> str:
    """The core of torch's weights-only error message."""
    message = message.split('\n\nCheck the documentation of torch.load')[0]
    if 'WeightsUnpickler error:' in message:
        message = message.rsplit('WeightsUnpickler error:', 1)[1]
    else:
        message = message.strip().split('\n\n')[-1]
    return ' '.join(message.split())


def _unsafe_globals(filename: str, message: str) -> List[str]:
    """The globals of ``filename`` that are not allow-listed."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # e.g. a file in torch's legacy (non-zip) format
        unsafe = re.findall(r'GLOBAL (\S+) was not an allowed global', message)
    return sorted(set(unsafe))


def load_from_local_safe(filename: str,
                         map_location: Optional[Any] = None) -> Any:
    """Load a local checkpoint with ``torch.load(weights_only=True)``: the
    local-file scheme of :class:`mmengine.runner.CheckpointLoader` once
    :func:`register_safe_checkpoint_types` has run.

    Args:
        filename (str): Path of the checkpoint; ``~`` is expanded.
        map_location (Any, optional): Same as :func:`torch.load`.
            Defaults to None.

    Returns:
        dict or OrderedDict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
        UnsafeCheckpointError: If the file holds objects that are not
            allow-listed; the message names the file and the globals.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint file {filename!r} does not exist or is not a file')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        raise UnsafeCheckpointError(filename,
                                    _unsafe_globals(filename, message),
                                    _torch_reason(message)) from None


def register_safe_checkpoint_types() -> None:
    """Allow-list mmengine's checkpoint globals and install the safe loader.

    Adds :data:`SAFE_CHECKPOINT_GLOBALS` with
    :func:`torch.serialization.add_safe_globals` and registers
    :func:`load_from_local_safe` as the local-file (``''``) scheme of
    :class:`mmengine.runner.CheckpointLoader`. Calling it again changes
    nothing.
    """
    torch.serialization.add_safe_globals(list(SAFE_CHECKPOINT_GLOBALS))
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)


def save_checkpoint_atomic(obj: Any,
                           dst: str,
                           check: Optional[Callable[[str], None]] = None
                           ) -> None:
    """``torch.save`` ``obj`` to ``dst`` through a temporary file beside it
    (:func:`~svd_mm.utils.volume_io.atomic_output`).

    The file appears under its name only once it is complete and, with
    ``check``, once ``check(temporary path)`` has returned; on any error
    ``dst`` is left as it was and the temporary file is removed.

    Args:
        obj: What to save.
        dst (str): Destination path; its folder is created.
        check (callable, optional): Called with the temporary path before
            the rename, e.g. to load it into the target model. Defaults to
            None.
    """
    with atomic_output(dst) as tmp:
        torch.save(obj, tmp)
        if check is not None:
            check(tmp)
