"""Sources answer panel queries: the embedded store now, a Prometheus server when scaled out."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from collectors.aggregator import Aggregator
from collectors.selector import parse_selector
from collectors.store import Store


class Source(Protocol):
    """What pages, the API and alerts may ask of metric data."""

    min_step: float

    def query(
        self, expr: str, start: float, end: float, step: float, agg: str, legend: str | None
    ) -> pd.DataFrame:
        """Return one column per matching series over [start, end] at ``step`` seconds."""
        ...

    def unit(self, expr: str) -> str | None:
        """Return the unit the metric behind a selector declares, if known."""
        ...

    def newest(self, expr: str) -> float | None:
        """Return the time of the newest sample of any series a selector matches (None: unknown)."""
        ...


class EmbeddedSource:
    """Answer queries from the in-process store through the pandas aggregator."""

    def __init__(self, store: Store, aggregator: Aggregator):
        self.store = store
        self.aggregator = aggregator
        self.min_step = store.capacity and store.tiers[0].retention / store.capacity

    def query(
        self, expr: str, start: float, end: float, step: float, agg: str, legend: str | None
    ) -> pd.DataFrame:
        return self.aggregator.query(expr, start, end, step, agg, legend)

    def unit(self, expr: str) -> str | None:
        spec = self.store.specs.get(parse_selector(expr).name)
        return spec.unit if spec else None

    def newest(self, expr: str) -> float | None:
        selector = parse_selector(expr)
        times = [
            self.store.newest(s.id)
            for s in self.store.series(selector.name)
            if selector.matches(s.label_dict)
        ]
        return max(times, default=None)
