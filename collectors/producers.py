"""The producers of a Pulseboard process, wired in one place for the server and the agent alike.

Each producer declares its metrics through the store's registry when it is scheduled, so a name two
producers declare differently stops the start with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from collectors.instruments import Instruments, SelfCollector
from collectors.registry import COLLECTORS
from collectors.scheduler import Scheduler
from collectors.scrape import ScrapeCollector
from tsdb.store import Store


def declare_host_metrics(store: Store) -> None:
    """Declare what the host collectors produce without running them (their data comes from elsewhere)."""
    for name, collector_class in COLLECTORS.items():
        for spec in collector_class.metrics:
            store.declare(spec, name)
    for spec in ScrapeCollector.metrics:  # up{job,instance}: Pulseboard's scrapes' or a Prometheus server's
        store.declare(spec, "scrape")


def schedule_producers(
    scheduler: Scheduler,
    store: Store,
    collectors: Any,
    instruments: Instruments,
    *,
    host: bool = True,
    ps: Any = None,
    clock: Callable[[], float] = time.time,
    connections: Callable[[], int] = lambda: 0,
) -> None:
    """Schedule this host's collectors (when ``host``) and Pulseboard's own, as ``collectors`` sets them."""
    declare_host_metrics(store)
    if host:
        for name, collector_class in COLLECTORS.items():
            cfg = getattr(collectors, name)
            if cfg.enabled:
                scheduler.collect(collector_class(ps=ps, clock=clock), store, cfg.interval)
    if collectors.self.enabled:
        own = SelfCollector(
            instruments,
            scheduler.health,
            lambda: (store.series_count, store.memory_bytes()),
            connections,
            clock,
            storage_problems=lambda: len(store.archive.problems),
        )
        scheduler.collect(own, store, collectors.self.interval)
