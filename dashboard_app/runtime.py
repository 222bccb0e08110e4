"""One running Pulseboard: store, archive, collectors and the source pages read from."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectors.aggregator import Aggregator
from collectors.persistence import StoreArchive
from collectors.registry import COLLECTORS
from collectors.scheduler import Scheduler
from collectors.store import Store, Tier
from dashboard_app.settings import Settings
from dashboard_app.sources import EmbeddedSource, Source
from layouts.dashboards import load_dashboards
from layouts.schema import Dashboard

log = logging.getLogger(__name__)


def build_store(settings: Settings, clock: Callable[[], float] = time.time) -> Store:
    """Return an empty store shaped by the environment's retention settings."""
    cfg = settings.store
    return Store(
        Tier(0, cfg.raw.retention),
        cfg.raw.resolution,
        [Tier(t.step, t.retention) for t in cfg.rollups],
        clock=clock,
    )


class Runtime:
    """Wire the store, its archive, the collectors and the dashboards for one process."""

    def __init__(
        self,
        settings: Settings,
        data_dir: str | Path,
        clock: Callable[[], float] = time.time,
        ps: Any = None,
        dashboards: dict[str, Dashboard] | None = None,
    ):
        self.settings = settings
        self.clock = clock
        self.dashboards = dashboards if dashboards is not None else load_dashboards()
        self.store = build_store(settings, clock)
        flushes_per_snapshot = round(settings.store.snapshot_interval / settings.store.flush_interval)
        self.archive = StoreArchive(Path(data_dir) / "store", snapshot_every=flushes_per_snapshot)
        self.archive.load(self.store)
        self.source: Source = EmbeddedSource(self.store, Aggregator(self.store, settings.query.max_points))
        self.scheduler = Scheduler(clock)
        for name, collector_class in COLLECTORS.items():
            cfg = getattr(settings.collectors, name)
            if cfg.enabled:
                self.scheduler.collect(collector_class(ps=ps, clock=clock), self.store, cfg.interval)
        self.scheduler.every("flush", settings.store.flush_interval, lambda: self.archive.flush(self.store))
        self.started = False

    def start(self) -> None:
        """Start collecting and flushing in the background."""
        if not self.started:
            self.scheduler.start()
            self.started = True

    def stop(self) -> None:
        """Stop the background jobs and save everything for the next start."""
        self.scheduler.stop()
        self.archive.snapshot(self.store)
        self.archive.close()
        self.started = False
