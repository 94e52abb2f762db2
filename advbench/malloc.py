"""Keep freed memory in the process (glibc only), set once by the console script.

glibc returns a freed block of more than 128 KiB to the kernel at once (mmap threshold,
adjusted upwards only as far as the largest block freed so far) and trims the heap top past
128 KiB. An attack frees and reallocates the same few activation tensors on every step, so the
kernel hands out fresh zeroed pages each time: in pesso's adaptive attack on pNML a quarter of
the CPU time was the kernel's (1,671 s of 6,900; 680 million minor page faults). Raising the
thresholds keeps those pages in the process, measured there at 31.5 s -> 26.8 s for the same
run with identical results. Allocation sizes and results are unchanged; only who keeps the
freed pages changes. A user's own MALLOC_* settings are left alone, and the library (import
advbench) never changes the allocator of a process it did not start: only the console script
and the Ray tasks' workers call this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt's parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_SETTINGS = {
    _M_MMAP_THRESHOLD: 32 << 20,  # glibc's largest allowed value on 64-bit
    _M_TRIM_THRESHOLD: 1 << 30,
    _M_TOP_PAD: 64 << 20,
}


def hold_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False (nothing changed) off glibc or when the
    user set any MALLOC_* variable."""
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS.items())
