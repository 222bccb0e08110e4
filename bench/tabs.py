"""Many browser tabs refreshing a dashboard, from one asyncio loop: light enough that a thousand of
them leave the server its share of the machine.

Each tab has its own keep-alive connection, starts at a random moment of the first period and
refreshes every period until the end; a refresh is one or more requests, sent one after another.
Latency is measured from the first request's send to the last answer's last byte; sizes are the
bytes as sent (compressed). The same tabs drive Pulseboard and the peers it is measured against.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

# One refresh of one tab: given its session and refresh number, return the bytes it received.
Refresh = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


@dataclass
class Tabs:
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    first_sizes: list[int] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict:
        latencies, sizes = sorted(self.latencies), sorted(self.sizes)
        return {
            "refreshes": len(latencies),
            "errors": self.errors,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "first_render_kib": statistics.median(self.first_sizes) / 1024 if self.first_sizes else 0.0,
            "refresh_kib_median": statistics.median(sizes) / 1024,
            "refresh_kib_p99": sizes[int(len(sizes) * 0.99) - 1] / 1024,
        }


def run_tabs(tab: Callable[[], Refresh], count: int, seconds: float, period: float) -> Tabs:
    """Run ``count`` tabs for ``seconds``; ``tab()`` makes one tab's refresh (with its own state)."""
    return asyncio.run(_run(tab, count, seconds, period))


async def _run(tab: Callable[[], Refresh], count: int, seconds: float, period: float) -> Tabs:
    out = Tabs()
    begin = time.monotonic() + 0.5
    await asyncio.gather(
        *(_tab(tab(), begin + random.uniform(0, period), begin + seconds, period, out) for _ in range(count))
    )
    return out


async def _tab(refresh: Refresh, start: float, end: float, period: float, out: Tabs) -> None:
    connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=period * 12)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as http:
        at, n = start, 0
        while at < end:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            t0 = time.perf_counter()
            try:
                size = await refresh(http, n)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                out.errors += 1
            else:
                if n == 0:
                    out.first_sizes.append(size)
                else:
                    out.latencies.append(time.perf_counter() - t0)
                    out.sizes.append(size)
            n += 1
            at += period
