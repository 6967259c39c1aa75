"""The resident memory of this process, for the benchmarks' peak-RSS
columns (Linux ``/proc/self``)."""
import contextlib
from typing import Iterator, Optional

__all__ = ['proc_status_kib', 'reset_peak_rss', 'peak_rss_above']


def proc_status_kib(key: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``'VmRSS'``,
    ``'VmHWM'``), or None where there is no such file or field."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> str:
    """Reset the peak RSS (``VmHWM``) to the current RSS through
    ``/proc/self/clear_refs``.

    Returns:
        str: How the following ``VmHWM`` reads: ``'VmHWM'``, or
        ``'VmHWM (not reset: lower bound)'`` where the reset is refused.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
        return 'VmHWM'
    except OSError:
        return 'VmHWM (not reset: lower bound)'


@contextlib.contextmanager
def peak_rss_above() -> Iterator[dict]:
    """Measure the peak RSS of a block above the RSS at its start.

    Yields:
        dict: Filled when the block ends: ``peak_mib`` and ``method``
        (:func:`reset_peak_rss`'s, or ``'unavailable'`` with ``peak_mib``
        NaN where ``/proc/self/status`` has no such fields).
    """
    record = {}
    base = proc_status_kib('VmRSS')
    method = reset_peak_rss()
    yield record
    peak = proc_status_kib('VmHWM')
    if base is None or peak is None:
        record.update(peak_mib=float('nan'), method='unavailable')
    else:
        record.update(peak_mib=(peak - base) / 1024, method=method)
