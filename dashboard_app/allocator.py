"""The C allocator's share of Pulseboard's memory: one arena, and freed pages handed back.

glibc gives each thread that allocates its own arena, up to eight per core, and keeps what a thread
freed for that thread's next allocation. The server's request threads take turns, so each arena
kept the peak of every push body it had parsed: filling 1,000 series through the JSON push grew
the process by 245 MiB with 32 of them in the read cache. With the interpreter's lock only one
thread allocates at a time anyway, so one arena costs nothing, and handing freed pages back every
few seconds keeps the rest bounded.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # mallopt's parameter for the most arenas
TRIM_EVERY = 10.0  # seconds between two hand-backs of freed pages

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.mallopt, _libc.malloc_trim  # noqa: B018  (glibc only: elsewhere the allocator is as it is)
except (OSError, AttributeError):
    _libc = None


def one_arena() -> None:
    """Let every thread allocate from one arena (call before the threads start)."""
    if _libc is not None:
        _libc.mallopt(M_ARENA_MAX, 1)


def hand_back() -> None:
    """Return the allocator's free pages to the system."""
    if _libc is not None:
        _libc.malloc_trim(0)
