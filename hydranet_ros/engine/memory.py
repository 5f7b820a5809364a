"""Keep large message buffers in the heap: fewer page faults when publishing big images.

glibc serves allocations above a threshold with fresh ``mmap`` pages and returns freed heap
memory to the system eagerly, so each megabyte-sized image message costs page faults. Raising
both thresholds (what ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` do when set before
start) makes such buffers reuse heap memory instead.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit systems
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
ENVIRONMENT_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')


def _libc_function(name: str, argtypes: tuple):
    """Return glibc's function ``name`` (returning int), or None off Linux or without it."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6'), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


def keep_large_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds; return whether they were changed.

    Does nothing outside Linux/glibc, or when the user set the malloc variables.
    """
    if any(v in os.environ for v in ENVIRONMENT_VARIABLES):
        return False
    mallopt = _libc_function('mallopt', (ctypes.c_int, ctypes.c_int))
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def release_unused_heap() -> bool:
    """Return freed heap memory to the system now (glibc ``malloc_trim``); True if some was.

    With the raised trim threshold, the temporaries of a one-off job (an ONNX export, a
    warm-up at a new size) would otherwise stay resident for the life of the process.
    """
    malloc_trim = _libc_function('malloc_trim', (ctypes.c_size_t,))
    return bool(malloc_trim and malloc_trim(0))
