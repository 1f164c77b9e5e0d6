"""How many malloc arenas the process's threads share (glibc only).

glibc gives threads that allocate at once arenas of their own, up to eight per core. A run
allocates on a dozen threads (the workers, the sheet writer, the heartbeat, the store's
connections), and what each arena frees is kept for its own later allocations, so a run's
resident memory crept up for as long as it ran (a 40,000-row run: +10 MB after the rows
were prepared; with two arenas: flat). The entry points limit the arenas before any thread
starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

#: mallopt's parameter for the arena limit (glibc's malloc.h).
_M_ARENA_MAX = -8
#: Arenas the process's threads share.
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Let all threads share at most `arenas` malloc arenas; whether the limit is set
    (False where the C library is not glibc: nothing is changed)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = int(libc.mallopt(_M_ARENA_MAX, arenas)) == 1
    except (OSError, AttributeError):
        done = False
    if not done:
        log.debug("could not limit the malloc arenas to %d", arenas)
    return done
