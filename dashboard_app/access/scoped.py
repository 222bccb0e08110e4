"""The source bound to the caller: every read of metric data from request code goes through it.

It answers only series of the caller's access levels. A request that names a metric the caller may
not see is refused (403, saying why); listings (names, label values, latest values, exposition)
leave such metrics out. Handlers and callbacks get it from ``reads()``, set by the guard for each
request after it has identified the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from flask import g

from dashboard_app.access.identity import Identity
from dashboard_app.sources.source import Latest, NotPermitted, Source, permit
from query.evaluate import Query
from tsdb.aggregator import SeriesInfo
from tsdb.selector import Selector, parse_selector


class ScopedSource:
    """A Source that returns only series of one caller's access levels."""

    def __init__(self, inner: Source, identity: Identity, level_of: Callable[[str], str | None]):
        self.inner = inner
        self.identity = identity
        self.level_of = level_of

    @property
    def min_step(self) -> float:
        return self.inner.min_step

    @property
    def scrape_interval(self) -> float:
        return self.inner.scrape_interval

    @property
    def sees_everything(self) -> bool:
        return self.identity.sees_everything

    @property
    def levels(self) -> tuple[str, ...]:
        """The access levels the caller reads, as a key: callers with the same ones see the same series."""
        return ("*",) if self.identity.sees_everything else tuple(sorted(self.identity.access))

    def refuse(self, name: str) -> None:
        """Raise the caller's refusal for a metric it may not read."""
        self.check(Selector(name))

    def permitted(self, promql: str) -> None:
        """Refuse PromQL that reads a metric the caller may not (403, saying which)."""
        permit(promql, self)

    def evaluate(self, query: Query, scope=None) -> pd.DataFrame:
        """Answer PromQL over a range from the caller's series only."""
        return self.inner.evaluate(query, self)

    def instant(self, promql: str, at: float, scope=None) -> list[tuple[SeriesInfo, float]]:
        """Answer PromQL at one time from the caller's series only."""
        return self.inner.instant(promql, at, self)

    def visible(self, name: str) -> bool:
        """Return whether the caller may read a metric."""
        return self.identity.sees(self.level_of(name))

    def check(self, expr: str | Selector) -> Selector:
        """Return the parsed selector; raise NotPermitted when its metric is not the caller's to read."""
        selector = parse_selector(expr) if isinstance(expr, str) else expr
        if not self.visible(selector.name):
            level = self.level_of(selector.name)
            where = f"the {level} dashboards" if level else "no access level, so admins only"
            raise NotPermitted(f"{selector.name} belongs to {where}; {self.identity.name} may not read it")
        return selector

    def series(self, expr: str | Selector) -> list[SeriesInfo]:
        """Return the series a selector matches."""
        return self.inner.series(self.check(expr))

    def names(self) -> list[str]:
        """Return every metric name the caller may read, sorted."""
        return [n for n in self.inner.names() if self.visible(n)]

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """Return the values a label takes across the caller's series (or a selector's), sorted."""
        if match is not None:
            self.check(match)
            return self.inner.label_values(label, match)
        if self.identity.sees_everything:
            return self.inner.label_values(label)
        found: set[str] = set()
        for name in self.names():
            found.update(self.inner.label_values(label, name))
        return sorted(found)

    def label_names(self, match: str | None = None) -> list[str]:
        """Return the label names of the caller's series (or of a selector's), sorted."""
        if match is not None:
            return self.inner.label_names(str(self.check(match)))
        if self.identity.sees_everything:
            return self.inner.label_names()
        found: set[str] = set()
        for name in self.names():
            found.update(self.inner.label_names(name))
        return sorted(found)

    def unit(self, expr: str) -> str | None:
        """Return the unit the metric behind a selector declares, if known."""
        return self.inner.unit(str(self.check(expr)))

    def newest(self, expr: str) -> float | None:
        """Return the time of the newest sample of the caller's series a selector matches."""
        return self.inner.newest(str(self.check(expr)))

    def latest(self, expr: str | Selector | None = None) -> Latest:
        """Return the newest sample of every live series the caller may read (or a selector's)."""
        if expr is not None:
            return self.inner.latest(self.check(expr))
        return [row for row in self.inner.latest() if self.visible(row[0].name)]


@dataclass(frozen=True)
class CallerReads:
    """The caller's views of every source: pages, the API (higher point cap), this process's store."""

    identity: Identity
    pages: ScopedSource
    api: ScopedSource
    local: ScopedSource  # this process's own store, for /metrics even when pages read Prometheus

    def visible(self, name: str) -> bool:
        return self.pages.visible(name)


class Sources:
    """Every source of one Pulseboard, handed to request code only as a caller's views of them."""

    def __init__(self, pages: Source, api: Source, local: Source, level_of: Callable[[str], str | None]):
        self._sources = (pages, api, local)
        self.level_of = level_of

    def for_caller(self, identity: Identity) -> CallerReads:
        """Return the views of every source bound to one caller."""
        return CallerReads(identity, *(ScopedSource(s, identity, self.level_of) for s in self._sources))


def reads() -> CallerReads:
    """Return the current request's reads, bound to its caller (set by the guard)."""
    found = getattr(g, "pulseboard_reads", None)
    if found is None:
        raise NotPermitted("this request was not identified; nothing may be read")
    return found
