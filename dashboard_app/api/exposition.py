"""Prometheus text exposition: the newest value of every series a source gives, typed by its declaration.

Request code hands it the caller's view of this process's store, so each reader sees their levels only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from flask import Response
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

from dashboard_app.sources.source import Source
from tsdb.metrics import OBSERVED_TYPES, MetricSpec

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A scraped target's health stays inside Pulseboard: a Prometheus scraping Pulseboard keeps its own `up`.
NOT_EXPOSED = frozenset({"up"})


class LatestCollector:
    """A prometheus_client collector over a source; ``collect()`` reads the newest samples once."""

    def __init__(self, source: Source, specs: Mapping[str, MetricSpec]):
        self.source = source
        self.specs = specs

    def collect(self):
        specs = dict(self.specs)
        observed = {name for name, spec in specs.items() if spec.type in OBSERVED_TYPES}
        parts = {f"{name}_{part}": name for name in observed for part in ("count", "sum", "bucket")}
        by_name: dict[str, list] = defaultdict(list)
        totals: dict[str, dict] = defaultdict(dict)  # observed name -> labels -> {"count", "sum", "buckets"}
        for series, _, value in self.source.latest():
            name = series.name
            if name in observed or name in NOT_EXPOSED:
                continue  # the observations themselves: exposed through their running totals
            owner = parts.get(name)
            if owner is not None:
                part = name[len(owner) + 1 :]
                le = series.labels.get("le") if part == "bucket" else None
                labels = tuple(
                    sorted((k, v) for k, v in series.labels.items() if k != "le" or part != "bucket")
                )
                entry = totals[owner].setdefault(labels, {"buckets": {}})
                if part == "bucket":
                    entry["buckets"][le] = value
                else:
                    entry[part] = value
                continue
            by_name[name].append((tuple(sorted(series.labels.items())), value))
        for name in sorted(by_name):
            spec = specs.get(name)
            kind = spec.type if spec and spec.type in ("counter", "gauge") else "gauge"
            doc = spec.help if spec else ""
            if kind == "counter":
                base = name[: -len("_total")] if name.endswith("_total") else name
                metric = Metric(base, doc, "counter")
                sample_name = f"{base}_total"
            else:
                metric, sample_name = Metric(name, doc, "gauge"), name
            for labels, value in by_name[name]:
                metric.add_sample(sample_name, dict(labels), value)
            yield metric
        for name in sorted(totals):
            spec = specs[name]
            metric = Metric(name, spec.help, spec.type)
            for labels, parts_of in totals[name].items():
                count, total = parts_of.get("count", 0.0), parts_of.get("sum", 0.0)
                if spec.type == "histogram":
                    buckets = {le: v for le, v in parts_of["buckets"].items() if le is not None}
                    buckets["+Inf"] = count  # every observation is within +Inf
                    for le in sorted(buckets, key=float):
                        metric.add_sample(f"{name}_bucket", {**dict(labels), "le": le}, buckets[le])
                metric.add_sample(f"{name}_count", dict(labels), count)
                metric.add_sample(f"{name}_sum", dict(labels), total)
            yield metric


def render(
    source: Source, specs: Mapping[str, MetricSpec], accept: str = "", process: bool = False
) -> Response:
    """Return the exposition of every series a source gives, in the format ``accept`` asks for.

    OpenMetrics when the scraper asks for it (``Accept: application/openmetrics-text``), else
    Prometheus' text format. ``process`` adds the standard ``process_*`` metrics of this process.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LatestCollector(source, specs))
    if process:
        ProcessCollector(registry=registry)
    if "application/openmetrics-text" in accept:
        return Response(openmetrics.generate_latest(registry), content_type=openmetrics.CONTENT_TYPE_LATEST)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)


class HeldExposition:
    """The exposition of one source (an agent's), kept until ``version()`` changes: scrapes between
    two collections (a second Prometheus, a retry) cost a look-up. The ``process_*`` metrics are read
    at every scrape; the collector making them is made once."""

    def __init__(self, source: Source, specs: Mapping[str, MetricSpec], version: Callable[[], object]):
        self.version = version
        self._latest = CollectorRegistry(auto_describe=False)
        self._latest.register(LatestCollector(source, specs))
        self._process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._process)
        self._held: dict[bool, tuple[object, bytes]] = {}

    def response(self, accept: str = "") -> Response:
        """Return the exposition in the format ``accept`` asks for, as ``render`` with ``process``."""
        open_metrics = "application/openmetrics-text" in accept
        make = openmetrics.generate_latest if open_metrics else generate_latest
        version = self.version()
        held = self._held.get(open_metrics)
        if held is None or held[0] != version:
            body = make(self._latest)
            if open_metrics:
                body = body.removesuffix(b"# EOF\n")  # the process metrics and the end follow
            held = self._held[open_metrics] = (version, body)
        kind = openmetrics.CONTENT_TYPE_LATEST if open_metrics else CONTENT_TYPE
        return Response(held[1] + make(self._process), content_type=kind)
