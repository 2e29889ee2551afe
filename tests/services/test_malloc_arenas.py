"""The server's threads share two malloc arenas instead of one each (glibc's default: 8 a core).

Each arena keeps its own high-water mark of freed memory; with dozens of threads that was a
good part of the server's creeping RSS (see `bench/soak.py`). The count is read from glibc
itself (`malloc_info`), in a fresh interpreter whose threads all allocate at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import ctypes, sys, threading
    from threadline.services.malloc_arenas import limit_malloc_arenas

    if sys.argv[1] == "limit":
        assert limit_malloc_arenas()
    libc = ctypes.CDLL("libc.so.6")
    together = threading.Barrier(8)

    def allocate():
        together.wait()
        kept = [bytearray(200_000) for _ in range(20)]  # above pymalloc: glibc's malloc
        together.wait()
        del kept

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
    libc.open_memstream.restype = ctypes.c_void_p
    stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(buffer.value.decode().count("<heap nr="))
    """
)


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_threads_share_two_arenas_once_limited() -> None:
    assert arenas("default") > 2  # the default gives the threads arenas of their own
    assert arenas("limit") <= 2
