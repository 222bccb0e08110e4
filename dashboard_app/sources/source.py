"""Sources answer every read of metric data: the embedded store, or a Prometheus server when scaled out.

Pages, the query API, exports, alert rules and analyses all read through a Source, so pointing
Pulseboard at Prometheus changes one object, not every reader.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

import pandas as pd

from query.evaluate import HeldRanges, Query, evaluate_instant, evaluate_range
from query.promql.printer import metric_names, reads_unnamed
from query.promql.selectors import Reader
from query.promql.shorthand import expand
from query.promql.values import Budget
from tsdb.aggregator import SeriesInfo
from tsdb.selector import Selector, parse_selector
from tsdb.store import Store


class SourceUnavailable(Exception):
    """The source could not answer (a server down or failing); the message names it and why."""


class NotPermitted(Exception):
    """A source bound to a caller refuses a metric the caller may not see; the message says why."""


Latest = list[tuple[SeriesInfo, float, float]]  # (series, Unix time, value) of each series' newest sample


class Scope(Protocol):
    """Whose reads these are: which metrics they may see, and the refusal for one they may not."""

    sees_everything: bool

    def visible(self, name: str) -> bool: ...

    def refuse(self, name: str) -> None: ...


def permit(promql: str, scope: Scope | None) -> None:
    """Refuse PromQL that reads a metric the scope may not (a selector with no metric name may read any)."""
    if scope is None or scope.sees_everything:
        return
    if reads_unnamed(promql):
        raise NotPermitted(
            "a selector without a metric name may read metrics of other levels; name the metric"
        )
    for name in metric_names(promql):
        if not scope.visible(name):
            scope.refuse(name)


class Source(Protocol):
    """What pages, the API, exports, alerts and analyses may ask of metric data."""

    min_step: float  # the finest step worth asking for, in seconds
    scrape_interval: float  # how often most series get a sample: a rate needs four of them

    def evaluate(self, query: Query, scope: Scope | None = None) -> pd.DataFrame:
        """Answer PromQL over a range: one column per series, one row per step with a value."""
        ...

    def instant(self, promql: str, at: float, scope: Scope | None = None) -> list[tuple[SeriesInfo, float]]:
        """Answer PromQL at one time: each series' value."""
        ...

    def series(self, expr: str | Selector) -> list[SeriesInfo]:
        """Return the series a selector matches."""
        ...

    def names(self) -> list[str]:
        """Return every metric name, sorted."""
        ...

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """Return the values a label takes across all series (or those a selector matches), sorted."""
        ...

    def label_names(self, match: str | None = None) -> list[str]:
        """Return the label names of all series (or of those a selector matches), sorted."""
        ...

    def unit(self, expr: str) -> str | None:
        """Return the unit the metric behind a selector declares, if known."""
        ...

    def newest(self, expr: str) -> float | None:
        """Return the time of the newest sample of any series a selector matches (None: unknown)."""
        ...

    def latest(self, expr: str | Selector | None = None) -> Latest:
        """Return the newest sample of every live series (or of those a selector matches)."""
        ...


def _selector(expr: str | Selector) -> Selector:
    return parse_selector(expr) if isinstance(expr, str) else expr


class EmbeddedSource:
    """Answer reads from the in-process store through the PromQL engine."""

    def __init__(
        self,
        store: Store,
        scrape_interval: float = 15.0,
        max_samples: int = 5_000_000,
    ):
        self.store = store
        self.min_step = store.min_step
        self.scrape_interval = scrape_interval
        self.max_samples = max_samples
        # Answers held for the next window (a live panel's next second).
        self.held = HeldRanges(lambda: store.version, store.changed_since)

    def reader(self, scope: Scope | None = None, deadline: float | None = None) -> Reader:
        """The engine's view of the store for one caller, with one query's budget."""
        budget = Budget(self.max_samples, deadline=deadline)
        if scope is None:
            return Reader(self.store, lambda name: True, lambda name: None, budget)
        return Reader(self.store, scope.visible, scope.refuse, budget)

    def evaluate(self, query: Query, scope: Scope | None = None) -> pd.DataFrame:
        """Answer PromQL over a range: one column per series, one row per step with a value."""
        text = expand(query.promql, query.step, self.scrape_interval, query.end - query.start)
        key = "all" if scope is None else getattr(scope, "levels", None)  # who sees the same series
        return evaluate_range(self.reader(scope, query.deadline), replace(query, promql=text), self.held, key)

    def instant(self, promql: str, at: float, scope: Scope | None = None) -> list[tuple[SeriesInfo, float]]:
        """Answer PromQL at one time: each series' value."""
        return evaluate_instant(self.reader(scope), expand(promql, self.min_step, self.scrape_interval), at)

    def series(self, expr: str | Selector) -> list[SeriesInfo]:
        """Return the series a selector matches."""
        selector = _selector(expr)
        return [
            SeriesInfo(s.name, s.label_dict)
            for s in self.store.series(selector.name)
            if selector.matches(s.label_dict)
        ]

    def names(self) -> list[str]:
        """Return every metric name, sorted."""
        return sorted(self.store.names())

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """Return the values a label takes (across a selector's series when given), sorted."""
        infos = self.series(match) if match else [i for n in self.store.names() for i in self.series(n)]
        return sorted({info.labels[label] for info in infos if label in info.labels})

    def label_names(self, match: str | None = None) -> list[str]:
        """Return the label names of all series (or of a selector's), sorted."""
        infos = self.series(match) if match else [i for n in self.store.names() for i in self.series(n)]
        return sorted({name for info in infos for name in info.labels})

    def unit(self, expr: str) -> str | None:
        """Return the unit the metric behind a selector declares, if known."""
        spec = self.store.specs.get(parse_selector(expr).name)
        return spec.unit if spec else None

    def latest(self, expr: str | Selector | None = None) -> Latest:
        """Return the newest sample of every live series (or of those a selector matches), finite only."""
        if expr is None:
            rows = self.store.latest()
        else:
            selector = _selector(expr)
            rows = [r for r in self.store.latest([selector.name]) if selector.matches(r[0].label_dict)]
        return [(SeriesInfo(s.name, s.label_dict), t, v) for s, t, v in rows if math.isfinite(v)]

    def newest(self, expr: str) -> float | None:
        """Return the time of the newest sample a selector's series may hold."""
        selector = parse_selector(expr)
        times = [
            self.store.newest(s.id)
            for s in self.store.series(selector.name)
            if selector.matches(s.label_dict)
        ]
        return max(times, default=None)
