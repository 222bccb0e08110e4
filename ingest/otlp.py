"""OTLP metrics, as the OpenTelemetry SDKs and Collector export them, read into Prometheus-named samples.

Names and labels follow the OpenTelemetry-to-Prometheus compatibility rules: characters a Prometheus
name cannot hold become ``_``, the unit becomes a suffix (``s`` → ``_seconds``, ``By`` → ``_bytes``,
``By/s`` → ``_bytes_per_second``), monotonic sums end in ``_total``; the resource's ``service.name``
(with ``service.namespace``) becomes ``job`` and ``service.instance.id`` ``instance``. Gauges and sums
are samples; delta sums and histograms are folded into running totals; histograms and exponential
histograms become ``_bucket{le}``, ``_count`` and ``_sum``; summaries ``{quantile}``, ``_count``, ``_sum``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from ingest.batch import Batch, Rows
from ingest.incoming import BodyError
from ingest.prompb.otlp_columns import ExportColumns

UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "bit": "bits",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
PER = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
MIN_SCALE, MAX_SCALE = (
    -10,
    20,
)  # an exponential histogram's scales, as the OpenTelemetry specification has them


class OtlpError(BodyError):
    """A body that is not an OTLP metrics export; the message says where."""


def decode(body: bytes, json_body: bool) -> ExportMetricsServiceRequest | ExportColumns:
    """Parse an export request from its protobuf or JSON encoding."""
    from google.protobuf import json_format

    request = ExportMetricsServiceRequest() if json_body else ExportColumns()
    try:
        if json_body:
            json_format.Parse(body.decode("utf-8"), request)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        kind = "JSON" if json_body else "protobuf"
        raise OtlpError(f"the body is not an OTLP metrics export in {kind}: {exc}") from None
    return request


def unit_suffix(unit: str, kind: str) -> str:
    """Return the name suffix of an OTLP (UCUM) unit: s → seconds, By/s → bytes_per_second, 1 → ratio."""
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    top, _, bottom = unit.partition("/")
    word = UNIT_WORDS.get(top, top)
    if bottom:
        word = f"{word}_per_{PER.get(bottom, UNIT_WORDS.get(bottom, bottom))}" if top else ""
    return _NOT_NAME.sub("_", word).strip("_")


def metric_name(name: str, unit: str, kind: str, counter: bool) -> str:
    """Return the Prometheus name of an OTLP metric."""
    out = _NOT_NAME.sub("_", name)
    out = re.sub(r"__+", "_", out).strip("_") or "_"
    if out[0].isdigit():
        out = "_" + out
    suffix = unit_suffix(unit, kind)
    if suffix and not out.endswith(suffix) and not out.endswith(f"{suffix}_total"):
        out = f"{out}_{suffix}"
    if counter and not out.endswith("_total"):
        out = f"{out}_total"
    return out


@lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """Return the Prometheus label name of an OTLP attribute key (remembered: keys repeat)."""
    name = _NOT_LABEL.sub("_", key)
    return (
        f"key_{name}" if name[:1].isdigit() else ("key" + name if name.startswith("__") else name) or "key_"
    )


def _value(any_value) -> str:
    kind = any_value.WhichOneof("value")
    if kind == "string_value":
        return any_value.string_value
    return "" if kind is None else str(getattr(any_value, kind))


_SEEN: dict[tuple[bytes, ...], dict[str, str]] = {}  # a number point's attribute bytes -> its labels
_SEEN_HELD = 100_000


def _attributes(attributes) -> dict[str, str]:
    """Return the labels of a point's attributes: decoded ones, or bytes (``ExportColumns``) decoded
    once and then known by their bytes."""
    if not attributes:
        return {}
    if not isinstance(attributes[0], bytes):
        return {label_name(a.key): _value(a.value) for a in attributes}
    raw = tuple(attributes)
    found = _SEEN.get(raw)
    if found is None:
        found = {}
        for blob in raw:
            pair = KeyValue()
            try:
                pair.ParseFromString(blob)
            except DecodeError as exc:
                raise OtlpError(f"an attribute that is not a KeyValue: {exc}") from None
            found[label_name(pair.key)] = _value(pair.value)
        if len(_SEEN) >= _SEEN_HELD:
            _SEEN.clear()
        _SEEN[raw] = found
    return found


def _resource_labels(resource) -> dict[str, str]:
    attrs = {a.key: _value(a.value) for a in resource.attributes}
    out = {}
    service = attrs.get("service.name")
    if service:
        namespace = attrs.get("service.namespace")
        out["job"] = f"{namespace}/{service}" if namespace else service
    if attrs.get("service.instance.id"):
        out["instance"] = attrs["service.instance.id"]
    return out


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def samples(
    request: ExportMetricsServiceRequest, running: Callable[[str, dict[str, str], float], float]
) -> tuple[Batch, dict[str, str]]:
    """Return the samples of an export and each name's type. ``running(name, labels, delta)`` adds a
    delta to a series' running total and returns the new total."""
    out = Rows()
    kinds: dict[str, str] = {}

    def add(name: str, labels: dict[str, str], value: float, at: int, where: str, kind: str, delta=False):
        kinds[name] = kind
        if delta:
            value = running(name, labels, value)
        out.add(name, labels, float(value), at / 1e9, where)

    for r, resource_metrics in enumerate(request.resource_metrics):
        base = _resource_labels(resource_metrics.resource)
        for s, scope in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope.metrics):
                where = f"resource_metrics[{r}].scope_metrics[{s}].metrics[{m}] ({metric.name})"
                data = metric.WhichOneof("data")
                if data == "gauge":
                    name = metric_name(metric.name, metric.unit, "gauge", False)
                    for point in metric.gauge.data_points:
                        labels = {**base, **_attributes(point.attributes)}
                        add(name, labels, _number(point), point.time_unix_nano, where, "gauge")
                elif data == "sum":
                    total = metric.sum.is_monotonic
                    name = metric_name(metric.name, metric.unit, "counter" if total else "gauge", total)
                    delta = metric.sum.aggregation_temporality == DELTA
                    for point in metric.sum.data_points:
                        labels = {**base, **_attributes(point.attributes)}
                        kind = "counter" if total else "gauge"
                        add(name, labels, _number(point), point.time_unix_nano, where, kind, delta)
                elif data in ("histogram", "exponential_histogram"):
                    name = metric_name(metric.name, metric.unit, "histogram", False)
                    histogram = getattr(metric, data)
                    delta = histogram.aggregation_temporality == DELTA
                    for point in histogram.data_points:
                        labels = {**base, **_attributes(point.attributes)}
                        at = point.time_unix_nano
                        for le, count in _buckets(point, data):
                            add(f"{name}_bucket", {**labels, "le": le}, count, at, where, "counter", delta)
                        add(f"{name}_count", labels, point.count, at, where, "counter", delta)
                        add(f"{name}_sum", labels, point.sum, at, where, "counter", delta)
                elif data == "summary":
                    name = metric_name(metric.name, metric.unit, "summary", False)
                    for point in metric.summary.data_points:
                        labels = {**base, **_attributes(point.attributes)}
                        at = point.time_unix_nano
                        for q in point.quantile_values:
                            add(name, {**labels, "quantile": _bound(q.quantile)}, q.value, at, where, "gauge")
                        add(f"{name}_count", labels, point.count, at, where, "counter")
                        add(f"{name}_sum", labels, point.sum, at, where, "counter")
                else:
                    raise OtlpError(f"{where}: a metric without data")
    return out.batch(), kinds


def expanded(request: ExportMetricsServiceRequest) -> int:
    """Return how many samples an export becomes, counted without making them."""
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                data = metric.WhichOneof("data")
                points = getattr(metric, data).data_points if data else ()
                for point in points:
                    if data == "histogram":
                        total += max(len(point.bucket_counts), 1) + 2
                    elif data == "exponential_histogram":
                        total += len(point.positive.bucket_counts) + 4
                    elif data == "summary":
                        total += len(point.quantile_values) + 2
                    else:
                        total += 1
    return total


def _number(point) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def _buckets(point, data: str) -> list[tuple[str, float]]:
    """Return cumulative (le, count) pairs of an explicit or exponential histogram point."""
    if data == "histogram":
        bounds = [*point.explicit_bounds, math.inf]
        counts = list(point.bucket_counts) or [point.count]
        cumulative, total = [], 0
        for bound, count in zip(bounds, counts):
            total += count
            cumulative.append((_bound(bound), float(total)))
        return cumulative
    if not MIN_SCALE <= point.scale <= MAX_SCALE:
        raise OtlpError(f"an exponential histogram's scale is {MIN_SCALE} to {MAX_SCALE} (got {point.scale})")
    # bucket i holds (2**(i * 2**-scale), 2**((i + 1) * 2**-scale)]: past 1024 doublings no float holds it
    last = point.positive.offset + len(point.positive.bucket_counts)
    if max(abs(point.positive.offset), abs(last)) * 2.0**-point.scale >= 1024:
        raise OtlpError(
            f"an exponential histogram's buckets (offset {point.positive.offset}) are out of range"
        )
    width = 2.0**-point.scale  # bucket i holds (2**(i * width), 2**((i + 1) * width)]
    total = sum(point.negative.bucket_counts) + point.zero_count  # every observation at or below zero
    pairs = [("0.0", float(total))] if total else []
    for i, count in enumerate(point.positive.bucket_counts):
        total += count
        pairs.append((_bound(2.0 ** ((point.positive.offset + i + 1) * width)), float(total)))
    pairs.append(("+Inf", float(point.count)))
    return pairs
