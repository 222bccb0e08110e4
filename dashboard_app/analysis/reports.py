"""The analyst's answers: performance against thresholds with evidence, trends with forecasts, anomalies."""

from __future__ import annotations

import numpy as np

from dashboard_app.sources.source import NotPermitted, Source
from layouts.schema import Dashboard
from layouts.units import format_value
from query.evaluate import Query
from query.promql.shorthand import compile_query, duration_text, is_selector, over_window
from query.statistics import anomalies, forecast, linear_trend, time_to_threshold

WEEK = 7 * 86400.0
APP_LATENCY = "pulseboard_app_request_duration_seconds"
APP_REQUESTS = "pulseboard_app_request_duration_seconds_count"
APP_ERRORS = "pulseboard_app_errors_total"
CPU = "pulseboard_system_cpu_usage_ratio"
MEMORY = "pulseboard_system_memory_usage_ratio"
DISK = "pulseboard_system_disk_usage_ratio"
LOAD = 'pulseboard_system_load_average{period="1m"}'
CORES = "pulseboard_system_cpu_core_usage_ratio"
# What counts as too much, for one host: amber at the first number, red at the second. CPU, memory
# and disk are the operations dashboard's own thresholds (``thresholds(dashboard)``), declared there.
THRESHOLDS = {
    "latency_p95_seconds": (0.5, 1.0),
    "error_rate": (0.01, 0.05),
    "load_per_core": (1.0, 2.0),
}
ON_THE_DASHBOARD = {"cpu": CPU, "memory": MEMORY, "disk": DISK}


def thresholds(dashboard: Dashboard) -> dict[str, tuple[float, float]]:
    """Every threshold of the report: CPU, memory and disk as the dashboard's stat panels have them."""
    found = dict(THRESHOLDS)
    for key, metric in ON_THE_DASHBOARD.items():
        for panel in dashboard.panels:
            if panel.thresholds and any(metric in q.compiled.metrics for q in panel.queries):
                found[key] = (panel.thresholds.warn, panel.thresholds.crit)
                break
        else:
            raise ValueError(f"the {dashboard.id} dashboard has no threshold for {metric}")
    return found


def _level(limits: dict, name: str, value: float | None) -> str:
    if value is None:
        return "unknown"
    warn, crit = limits[name]
    return "crit" if value >= crit else "warn" if value >= warn else "ok"


def _window(source: Source, selector: str, start: float, end: float, how: str) -> list:
    """Return a window's values, or none when the reader may not see the metric (it is left unknown)."""
    try:
        return source.instant(over_window(selector, how, duration_text(end - start)), end)
    except NotPermitted:
        return []


def _one(source: Source, selector: str, start: float, end: float, how: str, combine=max) -> float | None:
    values = [v for _, v in _window(source, selector, start, end, how)]
    return combine(values) if values else None


def _count(source: Source, selector: str) -> int:
    try:
        return len(source.series(selector))
    except NotPermitted:
        return 0


def _measure(source: Source, start: float, end: float) -> dict:
    """Every figure of the performance view for one window."""
    latency = {q: _one(source, APP_LATENCY, start, end, q) for q in ("p50", "p95", "p99")}
    throughput = _one(source, APP_REQUESTS, start, end, "rate", sum)
    errors = _one(source, APP_ERRORS, start, end, "rate", sum)
    cores = _count(source, CORES) or None
    load = _one(source, LOAD, start, end, "avg")
    return {
        "latency_seconds": latency,
        "throughput_per_second": throughput,
        "error_rate": errors / throughput if errors is not None and throughput else None,
        "cpu": {"avg": _one(source, CPU, start, end, "avg"), "max": _one(source, CPU, start, end, "max")},
        "memory": {
            "avg": _one(source, MEMORY, start, end, "avg"),
            "max": _one(source, MEMORY, start, end, "max"),
        },
        "disk": {s.labels.get("mount", s.name): v for s, v in _window(source, DISK, start, end, "max")},
        "load_per_core": load / cores if load is not None and cores else None,
    }


def _times(now: float | None, before: float | None) -> str:
    if now is None or before is None or before == 0:
        return ""
    return f", {now / before:.1f}× the comparison window's"


def performance(source: Source, start: float, end: float, limits: dict[str, tuple[float, float]]) -> dict:
    """Measure the window, compare it with a week before (or the window before), and recommend.

    ``limits`` are the thresholds (``thresholds(operations dashboard)``)."""
    now = _measure(source, start, end)
    span = end - start
    week_ago = _measure(source, start - WEEK, end - WEEK)
    if week_ago["throughput_per_second"] is None and week_ago["cpu"]["avg"] is None:
        baseline, compared_with = _measure(source, start - span, start), "the window before"
    else:
        baseline, compared_with = week_ago, "the same window a week earlier"
    p95 = now["latency_seconds"]["p95"]
    disk_max = max(now["disk"].values(), default=None)
    status = {
        "latency_p95_seconds": _level(limits, "latency_p95_seconds", p95),
        "error_rate": _level(limits, "error_rate", now["error_rate"]),
        "cpu": _level(limits, "cpu", now["cpu"]["max"]),
        "memory": _level(limits, "memory", now["memory"]["max"]),
        "disk": _level(limits, "disk", disk_max),
        "load_per_core": _level(limits, "load_per_core", now["load_per_core"]),
    }
    return {
        "window": {"start": start, "end": end},
        "compared_with": compared_with,
        "current": now,
        "baseline": baseline,
        "status": status,
        "thresholds": {k: {"warn": w, "crit": c} for k, (w, c) in limits.items()},
        "recommendations": _recommend(now, baseline, status, disk_max, limits),
    }


def _recommend(now: dict, before: dict, status: dict, disk_max: float | None, limits: dict) -> list[str]:
    """Say what to look at, quoting the numbers behind each word."""
    out = []
    p95 = now["latency_seconds"]["p95"]
    cpu = now["cpu"]["max"]
    if status["latency_p95_seconds"] in ("warn", "crit"):
        evidence = (
            f"p95 latency {format_value(p95, 'seconds')}{_times(p95, before['latency_seconds']['p95'])}"
        )
        if cpu is not None and cpu >= limits["cpu"][0]:
            out.append(
                f"{evidence}; CPU peaked at {cpu:.0%} in the same window: CPU-bound, add cores or cut work."
            )
        elif status["memory"] in ("warn", "crit"):
            out.append(
                f"{evidence}; memory peaked at {now['memory']['max']:.0%}: look for swapping and caches."
            )
        else:
            out.append(
                f"{evidence} while CPU stayed at {cpu or 0:.0%}: the time goes elsewhere (I/O, locks or a "
                "downstream service)."
            )
    if status["error_rate"] in ("warn", "crit"):
        out.append(
            f"Error rate {now['error_rate']:.1%} of {now['throughput_per_second']:.2f} requests/s"
            f"{_times(now['error_rate'], before['error_rate'])}: see errors by type on the development "
            "dashboard."
        )
    if status["cpu"] in ("warn", "crit") and status["latency_p95_seconds"] not in ("warn", "crit"):
        out.append(
            f"CPU peaked at {cpu:.0%} (average {now['cpu']['avg']:.0%}); latency still holds, "
            "but headroom is thin."
        )
    if status["memory"] in ("warn", "crit"):
        out.append(f"Memory peaked at {now['memory']['max']:.0%} of total.")
    if status["disk"] in ("warn", "crit"):
        fullest = max(now["disk"], key=now["disk"].get)
        out.append(f"{fullest} is {disk_max:.0%} full: free space or grow it (see the disk trend).")
    if status["load_per_core"] in ("warn", "crit"):
        out.append(f"Load is {now['load_per_core']:.2f} per core: more runnable work than cores.")
    if not out:
        parts = []
        if p95 is not None:
            parts.append(f"p95 latency {format_value(p95, 'seconds')}")
        if cpu is not None:
            parts.append(f"CPU peak {cpu:.0%}")
        if now["error_rate"] is not None:
            parts.append(f"error rate {now['error_rate']:.1%}")
        out.append("Nothing needs attention: " + (", ".join(parts) or "no data in this window") + ".")
    return out


def _series(source: Source, selector: str, start: float, end: float, step: float, aggregation: str):
    """Yield (series info, times in seconds, values) for each series a range query returns."""
    # A selector takes the aggregation (the panels' shorthand); PromQL says its own.
    compiled = compile_query(selector, aggregation if is_selector(selector) else None, None, 1.0, None)
    name = compiled.metrics[0] if compiled.metrics else None
    frame = source.evaluate(Query(compiled.promql, start, end, step, name=name))
    ts = frame.index.as_unit("ms").asi8 / 1e3 if len(frame) else np.zeros(0)
    for column in frame.columns:
        yield frame.attrs["series"][column], ts, frame[column].to_numpy(dtype=float)


def trends(
    source: Source,
    selector: str,
    start: float,
    end: float,
    step: float,
    aggregation: str,
    horizon: float,
    threshold: float | None,
) -> list[dict]:
    """Per series: the linear trend, a forecast (saying which method and why) and time to a threshold."""
    out = []
    for info, ts, values in _series(source, selector, start, end, step, aggregation):
        trend = linear_trend(ts, values)
        item = {
            "name": info.name,
            "labels": info.labels,
            "current": float(values[np.isfinite(values)][-1]) if np.isfinite(values).any() else None,
            "trend": trend.as_dict() if trend else None,
        }
        predicted = forecast(ts, values, horizon, step)
        item["forecast"] = predicted.as_dict() if predicted else None
        if threshold is not None and trend is not None:
            seconds = time_to_threshold(trend, end, threshold)
            item["time_to_threshold"] = {
                "threshold": threshold,
                "seconds": seconds,
                "at": end + seconds if seconds is not None else None,
            }
        out.append(item)
    return out


def anomaly_points(
    source: Source, selector: str, start: float, end: float, step: float, aggregation: str, threshold: float
) -> list[dict]:
    """Per series: the points that stand out from their neighbourhood (rolling median and MAD)."""
    out = []
    for info, ts, values in _series(source, selector, start, end, step, aggregation):
        found = anomalies(values, threshold=threshold)
        out.append(
            {
                "name": info.name,
                "labels": info.labels,
                "points": [[float(ts[i]), float(values[i])] for i in found],
            }
        )
    return out
