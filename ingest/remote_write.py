"""Prometheus remote write 1.0 bodies read into samples: snappy-compressed protobuf ``WriteRequest``s.

Each series brings its labels (``__name__`` is the metric name) and samples in milliseconds. A name's
type comes from the metadata Prometheus sends (in requests of their own, every minute), else from its
name's convention. Staleness markers and other NaNs are kept: a marker ends its series as it does in
Prometheus. Native histograms are refused with the reason (Pulseboard keeps classic buckets).

A body is read in bulk: each series' labels are decoded once and then known by their bytes, and the
samples of the whole request are read from their bytes into arrays at once.
"""

from __future__ import annotations

import cramjam
import numpy as np
from google.protobuf.message import DecodeError

from ingest.batch import Batch
from ingest.incoming import BodyError
from ingest.prompb.columns import WriteRequestColumns
from ingest.prompb.remote_pb2 import Label, MetricMetadata, Sample
from ingest.registration import MetricError
from tsdb.metrics import UNIT_NAME, Labels, MetricSpec

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


def decode(body: bytes, limit: int) -> WriteRequestColumns:
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
    request = WriteRequestColumns()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise BodyError(f"the body is not a remote write WriteRequest: {exc}") from None
    return request


def metadata(request: WriteRequestColumns) -> list[MetricSpec]:
    """Return the declarations the request's metadata gives, one per name of each family."""
    out = []
    for i, blob in enumerate(request.metadata):
        entry = MetricMetadata()
        try:
            entry.ParseFromString(blob)
        except DecodeError as exc:
            raise BodyError(f"metadata[{i}] is not a MetricMetadata: {exc}", f"metadata[{i}]") from None
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


_KEYS: dict[tuple[bytes, ...], tuple[str, Labels]] = {}  # label bytes seen -> the series key they make
_KEYS_HELD = 200_000  # label sets remembered; past this the memory starts again


def samples(request: WriteRequestColumns) -> Batch:
    """Return every sample of the request as a Batch, each able to say which series and sample it was."""
    keys: list[tuple[str, Labels]] = []
    counts: list[int] = []
    payloads: list[bytes] = []
    known = _KEYS
    for i, series in enumerate(request.timeseries):
        raw = tuple(series.labels)
        key = known.get(raw)
        if key is None:
            key = _series_key(raw, f"timeseries[{i}]")
            if len(known) >= _KEYS_HELD:
                known.clear()
            known[raw] = key
        if series.histograms:
            where = f"timeseries[{i}]"
            raise BodyError(
                f"{where}: native histograms are not kept; send classic histograms (_bucket series)", where
            )
        found = series.samples
        keys.append(key)
        counts.append(len(found))
        payloads.extend(found)
    ends = np.cumsum(counts, dtype=np.int64)
    ms, values = _read_samples(payloads, ends)

    def where(k: int) -> str:
        i = int(np.searchsorted(ends, k, side="right"))
        return f"timeseries[{i}].samples[{k - (int(ends[i - 1]) if i else 0)}]"

    rows = np.repeat(np.arange(len(keys), dtype=np.int64), counts)
    return Batch(keys, rows, ms / 1000.0, values, where)


def _series_key(raw: tuple[bytes, ...], where: str) -> tuple[str, Labels]:
    labels: dict[str, str] = {}
    for blob in raw:
        label = Label()
        try:
            label.ParseFromString(blob)
        except DecodeError as exc:
            raise BodyError(f"{where}: a label that is not a Label: {exc}", where) from None
        if label.name in labels:
            raise BodyError(f"{where}: label {label.name} appears twice", where)
        labels[label.name] = label.value
    name = labels.pop("__name__", "")
    if not name:
        raise BodyError(f"{where}: the series has no __name__ label", where)
    return name, tuple(sorted(labels.items()))


_BYTE = np.arange(10)


def _read_samples(payloads: list[bytes], ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the timestamps (ms) and values of encoded ``Sample``s, read together.

    Each is ``[0x09 value:8 bytes][0x10 timestamp:varint]``, either field left out when zero, as every
    protobuf writer puts them; one written any other way is parsed by itself.
    """
    n = len(payloads)
    ms = np.zeros(n, dtype=np.int64)
    values = np.zeros(n, dtype=np.float64)
    if n == 0:
        return ms, values
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
    end = np.cumsum(sizes)
    start = end - sizes
    buf = np.frombuffer(b"".join(payloads) + bytes(16), dtype=np.uint8)
    has_value = (sizes >= 9) & (buf[start] == 0x09)
    if has_value.any():
        at = start[has_value, None] + 1 + _BYTE[:8]
        values[has_value] = np.ascontiguousarray(buf[at]).view("<f8").ravel()
    tpos = start + 9 * has_value
    has_time = (tpos < end) & (buf[tpos] == 0x10)
    window = buf[(tpos + 1)[:, None] + _BYTE]  # up to the 10 bytes of a varint
    more = window >= 0x80
    length = np.argmin(more, axis=1) + 1
    fine = np.where(has_time, ~more.all(axis=1) & (tpos + 1 + length == end), tpos == end)
    digits = (window & 0x7F).astype(np.uint64) << (7 * _BYTE).astype(np.uint64)
    digits[_BYTE[None, :] >= length[:, None]] = 0
    ms[has_time] = np.bitwise_or.reduce(digits, axis=1)[has_time].view(np.int64)
    for k in np.flatnonzero(~fine).tolist():
        sample = Sample()
        try:
            sample.ParseFromString(payloads[k])
        except DecodeError as exc:
            i = int(np.searchsorted(ends, k, side="right"))
            raise BodyError(
                f"timeseries[{i}]: a sample that is not a Sample: {exc}", f"timeseries[{i}]"
            ) from None
        ms[k], values[k] = sample.timestamp, sample.value
    return ms, values
