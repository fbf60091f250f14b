"""How a predict process of its own starts and ends: the start-up measures that pay in the scored setting.

The organizers' harness starts one container per case, and for a few 2D cases most of the process's time
is start-up. The command line (every entry point: `python -m medsam_laptop`, `medsam_laptop`,
`medsam_laptop_predict`) calls `prepare` before the heavy imports and `end_process` at the end; a library
caller's process is never changed. docs/startup.md gives each measure's gain, and those removed.

`prepare`, for a short run (`case_files.few_encoder_calls`, decided from the case names before numpy is
imported; the OpenVINO backend, not `--baseline`):

- switches garbage collection off for the process. The imports create some 40,000 objects and no
  garbage, so the collections they set off find nothing; a short run makes little garbage after them;
- faults the heap in ahead of the model. The first encoder and decoder calls of a cold process write
  some 130 MB of fresh memory, and each 4 KB page of it costs a page fault. glibc is told to serve every
  allocation from its one main heap and to keep what is freed (`mallopt`), and a thread writes
  `HEAP_MB` of that heap and frees it, on the core the imports leave idle, so the model's buffers reuse
  those pages.

A long run is left alone: a 3D case, with tens of encoder calls, ran slower on the single heap. Memory
freed during a short run stays with the process (no trimming), which a few 2D cases can afford. With one
core there is no idle one, so only collection is switched off.
"""

import ctypes
import gc
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn

from ..io.case_files import few_encoder_calls, list_cases

HEAP_MB = 200  # the first one-box encoder and decoder calls need about 130 MB; 150 and 200 measured alike
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # glibc's malloc.h
_KEEP_ALL = 2**31 - 1


def prepare(input_dir: Path, backend: str, baseline: bool) -> None:
    """Prepares the process for a short run of the cases in `input_dir`; leaves any other run alone. The torch
    backend stands for the organizers' script and `baseline` encodes once per box, so those processes start
    as plain Python does."""
    if backend != "openvino" or baseline:
        return
    try:
        paths = list_cases(input_dir)
    except OSError:  # a missing or unreadable folder: predict reports it
        return
    if few_encoder_calls(paths):
        prepare_short_run()


def prepare_short_run() -> threading.Thread | None:
    """Collection off and the heap's fault-in started; returns the thread writing the heap (None with one
    core, or where the C library is not glibc, whose allocator this relies on)."""
    gc.disable()
    libc = _glibc()
    if libc is None or len(os.sched_getaffinity(0)) < 2:
        return None
    for option, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_ALL)):
        libc.mallopt(option, value)
    writer = threading.Thread(target=_fault_in, args=(libc, HEAP_MB << 20), name="heap-fault-in", daemon=True)
    writer.start()
    return writer


def end_process(status: int) -> NoReturn:
    """Ends the process once every output is written and closed, skipping Python's own shutdown, which
    would unload OpenVINO's plugin and thread pool."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # Windows: TypeError
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only)
    except (OSError, AttributeError, TypeError):
        return None
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def _fault_in(libc: ctypes.CDLL, size: int) -> None:
    """Writes `size` bytes of fresh heap and frees them (ctypes releases the GIL for each call)."""
    block = libc.malloc(size)
    if block:
        libc.memset(block, 0, size)
        libc.free(block)
