"""The CLI's threads share two malloc arenas (glibc): memory a thread frees is reused by the
others, so a long run's resident memory does not creep up arena by arena."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, re, sys, tempfile, threading
from sheetbatch.malloc_arenas import limit_malloc_arenas
if sys.argv[1] == "limited":
    assert limit_malloc_arenas()
barrier = threading.Barrier(8)
def allocate():
    barrier.wait()  # all at once: glibc gives a contended thread an arena of its own
    kept = [bytes(1024 + i % 512) for i in range(20000)]
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(len(re.findall(r'<heap nr="', open(out.name).read())))
"""

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_threads_share_two_arenas_once_limited() -> None:
    assert arenas("default") > 2  # the probe sees threads take arenas of their own
    assert arenas("limited") <= 2
