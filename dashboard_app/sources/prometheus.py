"""Read metrics from a Prometheus-compatible server's HTTP API (query_range, query, series, labels).

Every reader of the embedded store can read through this instead: pages, the query API, exports,
alert rules and analyses. Queries are translated to PromQL by dashboard_app.sources.promql; what has no
exact translation is refused with the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import requests

from dashboard_app.settings import PrometheusSettings
from dashboard_app.sources.source import SourceUnavailable, permit
from layouts.units import SI_SYMBOLS, SYMBOLS
from query.evaluate import Query
from query.promql.shorthand import duration_text, expand
from tsdb.aggregator import QueryError, QueryTimeout, SeriesInfo, series_frame
from tsdb.metrics import MetricSpec
from tsdb.selector import Selector, parse_selector

# A metric's unit from its name's suffix, when Pulseboard does not know the metric itself.
SUFFIX_UNITS = (
    ("_bytes_per_second", "bytes_per_second"),
    ("_per_second", "per_second"),
    ("_ratio", "ratio"),
    ("_percent", "percent"),
    ("_bytes", "bytes"),
    ("_seconds", "seconds"),
    ("_bytes_total", "bytes"),
    ("_seconds_total", "seconds"),
)


def unit_of_name(name: str) -> str | None:
    """Return a metric's unit from its name, by Prometheus' conventions (node_hwmon_temp_celsius: celsius)."""
    known = next((unit for suffix, unit in SUFFIX_UNITS if name.endswith(suffix)), None)
    if known is not None:
        return known
    last = name.removesuffix("_total").rsplit("_", 1)[-1]
    return last if last in SI_SYMBOLS or last in SYMBOLS else None


def session(cfg: PrometheusSettings) -> requests.Session:
    """An HTTP session carrying the server's credentials."""
    http = requests.Session()
    if cfg.username is not None:
        http.auth = (cfg.username, cfg.password or "")
    if cfg.bearer_token is not None:
        http.headers["Authorization"] = f"Bearer {cfg.bearer_token}"
    return http


class PrometheusSource:
    """A Source over a Prometheus-compatible server; holds no metric data of its own."""

    def __init__(
        self,
        cfg: PrometheusSettings,
        specs: Mapping[str, MetricSpec] | None = None,
        clock: Callable[[], float] = time.time,
        http: requests.Session | None = None,
    ):
        if cfg.url is None:
            raise ValueError("a Prometheus source needs a URL")
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.specs = specs if specs is not None else {}
        self.clock = clock
        self.min_step = float(cfg.scrape_interval)
        self.scrape_interval = float(cfg.scrape_interval)
        self.http = http or session(cfg)

    # -- HTTP -----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: dict | list, deadline: float | None = None):
        timeout = float(self.cfg.timeout)
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise QueryTimeout("the query ran out of time before Prometheus was asked")
        url = f"{self.url}/api/v1{path}"
        try:
            if method == "GET":
                response = self.http.get(url, params=params, timeout=timeout)
            else:
                pairs = list(params.items()) if isinstance(params, dict) else list(params)
                pairs.append(("timeout", f"{max(1, round(timeout * 1000))}ms"))
                response = self.http.post(url, data=pairs, timeout=timeout)
        except requests.Timeout:
            raise QueryTimeout(f"Prometheus at {self.url} did not answer within {timeout:.0f} s") from None
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"Prometheus at {self.url} cannot be reached ({type(exc).__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise SourceUnavailable(
                f"Prometheus at {self.url} answered HTTP {response.status_code} without a JSON body"
            ) from None
        if body.get("status") == "success":
            return body.get("data")
        error = body.get("error") or f"HTTP {response.status_code}"
        if body.get("errorType") == "timeout":
            raise QueryTimeout(f"Prometheus stopped the query: {error}")
        if response.status_code in (400, 422):
            raise QueryError(f"Prometheus refused the query: {error}")
        raise SourceUnavailable(f"Prometheus at {self.url} answered HTTP {response.status_code}: {error}")

    # -- Source ---------------------------------------------------------------------------------

    def evaluate(self, query: Query, scope=None) -> pd.DataFrame:
        """Pass PromQL over a range to the server, unchanged but for the range variables."""
        text = expand(query.promql, query.step, self.scrape_interval, query.end - query.start)
        permit(text, scope)
        data = self._call(
            "POST",
            "/query_range",
            {"query": text, "start": query.start, "end": query.end, "step": query.step},
            query.deadline,
        )
        if data.get("resultType") != "matrix":
            raise QueryError(f"Prometheus answered a {data.get('resultType')}, not a range of series")
        columns = []
        for item in data.get("result", []):
            values = np.asarray(item["values"], dtype=float).reshape(-1, 2)
            if len(values):
                name = item["metric"].get("__name__") or query.name or ""
                columns.append((SeriesInfo(name, _labels(item["metric"])), values[:, 0], values[:, 1]))
        columns.sort(key=lambda c: sorted(c[0].labels.items()))
        return series_frame(columns, query.legend, query.step)

    def instant(self, promql_text: str, at: float, scope=None) -> list[tuple[SeriesInfo, float]]:
        """Pass PromQL at one time to the server."""
        text = expand(promql_text, self.min_step, self.scrape_interval)
        permit(text, scope)
        data = self._call("POST", "/query", {"query": text, "time": at})
        if data.get("resultType") == "scalar":
            return [(SeriesInfo("", {}), float(data["result"][1]))]
        return [
            (SeriesInfo(item["metric"].get("__name__", ""), _labels(item["metric"])), float(item["value"][1]))
            for item in data.get("result", [])
        ]

    def passthrough(self, path: str, params: list[tuple[str, str]], scope=None):
        """Ask the server's own query API (``/query``, ``/query_range``, ...) and return its data."""
        for key, value in params:
            if key in ("query", "match[]"):
                permit(value, scope)
        posted = ("/query", "/query_range", "/series", "/labels", "/query_exemplars")
        return self._call("POST" if path in posted else "GET", path, params)

    def series(self, expr: str | Selector) -> list[SeriesInfo]:
        """Return the series a selector matches."""
        sel = _selector(expr)
        data = self._call("POST", "/series", {"match[]": str(sel)})
        return [SeriesInfo(sel.name, _labels(m)) for m in data or []]

    def names(self) -> list[str]:
        """Return every metric name, sorted."""
        return sorted(self._call("GET", "/label/__name__/values", {}) or [])

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """Return the values a label takes (across a selector's series when given), sorted."""
        params = {"match[]": str(parse_selector(match))} if match else {}
        return sorted(self._call("GET", f"/label/{label}/values", params) or [])

    def label_names(self, match: str | None = None) -> list[str]:
        """Return the label names of all series (or of a selector's), sorted."""
        params = {"match[]": str(parse_selector(match))} if match else {}
        return sorted(n for n in self._call("GET", "/labels", params) or [] if n != "__name__")

    def unit(self, expr: str) -> str | None:
        """Return the unit the metric behind a selector declares, if known."""
        name = parse_selector(expr).name
        spec = self.specs.get(name)
        if spec is not None:
            return spec.unit
        return unit_of_name(name)

    def latest(self, expr: str | Selector | None = None) -> list[tuple[SeriesInfo, float, float]]:
        """Return each matching series' newest value within a few scrapes (Prometheus' staleness)."""
        if expr is None:
            raise QueryError("a selector is required when reading from Prometheus")
        now = self.clock()
        selector = str(_selector(expr))
        found = self.instant(f"last_over_time({selector}[{duration_text(5 * self.min_step)}])", now)
        return [(s, now, v) for s, v in found if math.isfinite(v)]

    def newest(self, expr: str) -> float | None:
        """Return the time of the newest sample a selector's series may hold."""
        # New data arrives once a scrape interval: panels redraw at most that often, with no request.
        return math.floor(self.clock() / self.min_step) * self.min_step


def _selector(expr: str | Selector) -> Selector:
    return parse_selector(expr) if isinstance(expr, str) else expr


def _labels(metric: dict) -> dict[str, str]:
    return {k: v for k, v in metric.items() if k != "__name__"}
