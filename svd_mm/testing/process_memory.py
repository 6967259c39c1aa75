"""The resident memory of this process, for the benchmarks' peak-RSS
columns (Linux ``/proc/self``)."""
from typing import Optional

__all__ = ['proc_status_kib', 'reset_peak_rss']


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
