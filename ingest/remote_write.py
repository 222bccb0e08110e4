"""Prometheus remote write 1.0 bodies read into samples: snappy-compressed protobuf ``WriteRequest``s.

Each series brings its labels (``__name__`` is the metric name) and samples in milliseconds. A name's
type comes from the metadata Prometheus sends (in requests of their own, every minute), else from its
name's convention. Staleness markers and other NaNs are kept: a marker ends its series as it does in
Prometheus. Native histograms are refused with the reason (Pulseboard keeps classic buckets).

A body is read in bulk: each series' labels are decoded once and then known by their bytes, and the
samples of the whole request are read from their bytes into arrays at once.
"""

from __future__ import annotations

from collections.abc import Callable

import cramjam
import numpy as np
from google.protobuf.message import DecodeError

from ingest.batch import Batch
from ingest.incoming import BodyError
from ingest.prompb.columns import TimeSeriesColumns, WriteRequestColumns
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


_KEYS: dict[bytes, tuple[str, Labels]] = {}  # the bytes of a series' labels seen -> its key
_KEYS_HELD = 200_000  # label sets remembered; past this the memory starts again
_LENGTHS = np.arange(22)  # a sample field's payload: 0 to 20 bytes (a value and a timestamp)


def samples(request: WriteRequestColumns) -> Batch:
    """Return every sample of the request as a Batch, each able to say which series and sample it was.

    A series as Prometheus writes it is its labels and then one sample: when its bytes end in one
    sample field and what comes before is a label set seen before, that set's key is taken as it is
    (the bytes parse no other way), and the sample is read with all the others at once. Any other
    series is parsed field by field.
    """
    blobs = request.timeseries
    n = len(blobs)
    if n == 0:  # metadata only, as Prometheus sends it every minute
        nothing = np.zeros(0, dtype=np.int64)
        return Batch([], nothing, nothing.astype(np.float64), nothing.astype(np.float64), str)
    sizes = np.fromiter(map(len, blobs), dtype=np.int64, count=n)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    raw = b"".join(blobs)
    # where each series' last field would start if it were one sample of 0 to 21 bytes
    tag = ends[:, None] - _LENGTHS - 2
    padded = np.frombuffer(raw + bytes(32), dtype=np.uint8)
    fits = (tag >= starts[:, None]) & (padded[tag.clip(0)] == 0x12) & (padded[(tag + 1).clip(0)] == _LENGTHS)
    length = np.where(fits.any(axis=1), np.argmax(fits, axis=1), -1)
    get = _KEYS.get
    found = [
        get(raw[a : b - k - 2]) if k >= 0 else None
        for a, b, k in zip(starts.tolist(), ends.tolist(), length.tolist())
    ]
    if None not in found:  # every series known and one sample each: nothing left to parse one by one
        row = np.arange(n, dtype=np.int64)
        ms, values = _read_samples(padded, ends - length, ends, lambda k: f"timeseries[{k}]")
        return Batch(found, row, ms / 1000.0, values, lambda k: f"timeseries[{k}].samples[0]")
    keys: list[tuple[str, Labels]] = []
    index: list[int] = []  # each key's place in the request
    rows: list[int] = []
    first: list[int] = []  # where each sample starts, in raw and then in the extra payloads
    last: list[int] = []
    extra: list[bytes] = []
    place = len(raw)
    for i, key in enumerate(found):
        if key is not None:
            rows.append(len(keys))
            first.append(int(ends[i] - length[i]))
            last.append(int(ends[i]))
            keys.append(key)
            index.append(i)
            continue
        key, payloads = _parsed(blobs[i], i)
        if payloads:
            for payload in payloads:
                rows.append(len(keys))
                first.append(place)
                place += len(payload)
                last.append(place)
            extra.extend(payloads)
            keys.append(key)
            index.append(i)
    order = np.argsort(np.asarray(rows, dtype=np.int64), kind="stable")
    row = np.asarray(rows, dtype=np.int64)[order]
    buf = np.frombuffer(raw + b"".join(extra) + bytes(16), dtype=np.uint8)
    start = np.asarray(first, dtype=np.int64)[order]
    end = np.asarray(last, dtype=np.int64)[order]
    ms, values = _read_samples(buf, start, end, lambda k: f"timeseries[{index[row[k]]}]")

    def where(k: int) -> str:
        j = k - int(np.searchsorted(row, row[k], side="left"))
        return f"timeseries[{index[row[k]]}].samples[{j}]"

    return Batch(keys, row, ms / 1000.0, values, where)


def _parsed(blob: bytes, i: int) -> tuple[tuple[str, Labels], list[bytes]]:
    """Return one series' key and its samples' bytes, parsed field by field; learn its labels' bytes."""
    where = f"timeseries[{i}]"
    series = TimeSeriesColumns()
    try:
        series.ParseFromString(blob)
    except (DecodeError, RecursionError) as exc:
        raise BodyError(f"{where} is not a TimeSeries: {exc}", where) from None
    if series.histograms:
        raise BodyError(
            f"{where}: native histograms are not kept; send classic histograms (_bucket series)", where
        )
    labels = tuple(series.labels)
    key = _series_key(labels, where)
    prefix = b"".join(b"\x0a" + _varint(len(label)) + label for label in labels)
    if blob.startswith(prefix):  # labels first, as Prometheus writes them: known by their bytes
        if len(_KEYS) >= _KEYS_HELD:
            _KEYS.clear()
        _KEYS[prefix] = key
    return key, list(series.samples)


def _varint(number: int) -> bytes:
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


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


def _read_samples(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, where: Callable[[int], str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the timestamps (ms) and values of the ``Sample``s encoded in ``buf[start:end]``, read together.

    Each is ``[0x09 value:8 bytes][0x10 timestamp:varint]``, either field left out when zero, as every
    protobuf writer puts them; one written any other way is parsed by itself. ``buf`` goes on for 16
    bytes past the last sample.
    """
    n = len(start)
    ms = np.zeros(n, dtype=np.int64)
    values = np.zeros(n, dtype=np.float64)
    if n == 0:
        return ms, values
    sizes = end - start
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
            sample.ParseFromString(buf[start[k] : end[k]].tobytes())
        except DecodeError as exc:
            raise BodyError(f"{where(k)}: a sample that is not a Sample: {exc}", where(k)) from None
        ms[k], values[k] = sample.timestamp, sample.value
    return ms, values
