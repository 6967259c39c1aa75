"""How much of a file the kernel holds in its page cache (Linux).

Reading from the page cache costs no disk I/O, so ``/proc/self/io``'s
``read_bytes`` is 0 for a file read twice. To count the bytes a piece of
code pulls from a file, evict the file (:func:`evict_file`), run the code
and count the file's resident pages (:func:`resident_bytes`, ``mincore`` on
a map of the file): every page it read or faulted in, including the
kernel's read-ahead, is counted once. Dirty pages cannot be evicted, so
:func:`evict_file` syncs the file first.
"""
import ctypes
import ctypes.util
import mmap
import os
from typing import Iterable

import numpy as np

__all__ = ['evict_file', 'resident_bytes', 'page_cache_supported']


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                             ctypes.POINTER(ctypes.c_ubyte)]
    libc.mincore.restype = ctypes.c_int
    return libc


def evict_file(path: str) -> None:
    """Write back and drop the cached pages of a file
    (``fdatasync`` + ``posix_fadvise(POSIX_FADV_DONTNEED)``); pages mapped
    by a process stay."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_bytes(path: str) -> int:
    """Bytes of a file in the page cache (resident pages x page size).

    Args:
        path (str): A regular, non-empty file.

    Returns:
        int: The cached bytes (whole pages).
    """
    size = os.path.getsize(path)
    if size == 0:
        return 0
    with open(path, 'rb') as f:
        mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    try:
        # the address of the map, without touching (faulting in) its pages
        view = np.frombuffer(mapped, dtype=np.uint8)
        address = view.ctypes.data
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * pages)()
        failed = _libc().mincore(address, size, vec) != 0
        err = ctypes.get_errno()
        del view
    finally:
        mapped.close()
    if failed:
        raise OSError(err, f'mincore failed on {path}: {os.strerror(err)}')
    return int(np.count_nonzero(np.frombuffer(vec, np.uint8) & 1)) * \
        mmap.PAGESIZE


def page_cache_supported(paths: Iterable[str]) -> bool:
    """Whether these files can be evicted here (Linux with
    ``posix_fadvise``): evicts them and checks none of their pages stay."""
    if not hasattr(os, 'posix_fadvise'):
        return False
    try:
        for path in paths:
            evict_file(path)
        return all(resident_bytes(path) == 0 for path in paths)
    except OSError:
        return False
