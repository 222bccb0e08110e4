"""Prometheus remote write 1.0 bodies read into samples: snappy-compressed protobuf ``WriteRequest``s.

Each series brings its labels (``__name__`` is the metric name) and samples in milliseconds. A name's
type comes from the metadata Prometheus sends (in requests of their own, every minute), else from its
name's convention. Staleness markers and other NaNs are kept: a marker ends its series as it does in
Prometheus. Native histograms are refused with the reason (Pulseboard keeps classic buckets).
"""

from __future__ import annotations

import cramjam
from google.protobuf.message import DecodeError

from ingest.incoming import BodyError, Incoming
from ingest.prompb.remote_pb2 import MetricMetadata, WriteRequest
from ingest.registration import MetricError
from tsdb.metrics import UNIT_NAME, MetricSpec

# The types a metadata entry gives each name of its family: a histogram's and a summary's parts.
_PARTS = {
    MetricMetadata.COUNTER: (("", "counter"),),
    MetricMetadata.GAUGE: (("", "gauge"),),
    MetricMetadata.INFO: (("", "gauge"),),
    MetricMetadata.STATESET: (("", "gauge"),),
    MetricMetadata.HISTOGRAM: (("_bucket", "counter"), ("_count", "counter"), ("_sum", "counter")),
    MetricMetadata.GAUGEHISTOGRAM: (("_bucket", "gauge"), ("_gcount", "gauge"), ("_gsum", "gauge")),
    MetricMetadata.SUMMARY: (("", "gauge"), ("_count", "counter"), ("_sum", "counter")),
}


def decode(body: bytes, limit: int) -> WriteRequest:
    """Return the WriteRequest of a snappy-compressed body; refuse one over ``limit`` bytes unpacked."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as exc:
        raise BodyError(f"the body is not snappy-compressed (block format): {exc}") from None
    if size > limit:
        message = f"the body is {size:,} bytes unpacked, more than {limit:,}: send smaller batches"
        raise MetricError(message, 413, "body")
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BodyError(f"the body is not snappy-compressed (block format): {exc}") from None
    request = WriteRequest()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise BodyError(f"the body is not a remote write WriteRequest: {exc}") from None
    return request


def metadata(request: WriteRequest) -> list[MetricSpec]:
    """Return the declarations the request's metadata gives, one per name of each family."""
    out = []
    for i, entry in enumerate(request.metadata):
        parts = _PARTS.get(entry.type)
        if parts is None or not entry.metric_family_name:
            continue
        unit = entry.unit if UNIT_NAME.fullmatch(entry.unit or "") else "none"
        for suffix, kind in parts:
            try:
                out.append(MetricSpec(entry.metric_family_name + suffix, kind, unit, entry.help[:1000]))
            except ValueError as exc:
                raise BodyError(f"metadata[{i}]: {exc}", f"metadata[{i}]") from None
    return out


def samples(request: WriteRequest) -> list[Incoming]:
    """Return every sample of the request, each saying which series and sample it was."""
    out: list[Incoming] = []
    for i, series in enumerate(request.timeseries):
        where = f"timeseries[{i}]"
        if len(series.histograms):
            raise BodyError(
                f"{where}: native histograms are not kept; send classic histograms (_bucket series)", where
            )
        labels: dict[str, str] = {}
        for label in series.labels:
            if label.name in labels:
                raise BodyError(f"{where}: label {label.name} appears twice", where)
            labels[label.name] = label.value
        name = labels.pop("__name__", "")
        if not name:
            raise BodyError(f"{where}: the series has no __name__ label", where)
        for j, sample in enumerate(series.samples):
            out.append(
                Incoming(name, labels, sample.value, sample.timestamp / 1000.0, f"{where}.samples[{j}]")
            )
    return out
