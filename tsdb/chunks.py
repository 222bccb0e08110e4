"""Chunks of samples and rollup buckets: how they are computed, merged and compressed for disk.

A raw chunk holds one series' samples in time order: timestamps in milliseconds as
delta-of-delta, values as the XOR of each value's bits with the previous one's (Gorilla's
idea, as Prometheus' chunks use it), each array byte-shuffled and the whole compressed with
zstd, with a checksum so damage is found rather than read. A rollup fragment holds per-step
summaries (count, sum, min, max, last, counter increase) of the samples of one chunk;
fragments of the same bucket merge exactly, so a bucket may be built from many chunks.
"""

from __future__ import annotations

import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import zstandard

RAW_MAGIC = b"PBr1"
ROLLUP_MAGIC = b"PBu1"
_HEADER = struct.Struct("<4sI")  # magic, sample or bucket count
_CODEC = struct.Struct("<b")  # how a raw chunk's values are kept: -1 XORed floats, k >= 0 decimals (x 10^k)
_DECIMALS = range(7)  # a value with at most six decimal digits is kept as an integer delta
_EXACT = 2**53
BLOCK_OVERHEAD = (
    400  # bytes a cached block costs beyond its data: array header, allocation, cache entry (measured)
)


class ChunkDamaged(ValueError):
    """A chunk whose bytes do not decode: its checksum, header or length is wrong."""


@dataclass
class Rollup:
    """Per-step summaries of one series on one tier, oldest first."""

    start: np.ndarray  # bucket start, Unix seconds
    count: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray
    increase: np.ndarray  # counter increase within the bucket, resets counted from zero
    _block: np.ndarray | None = field(default=None, repr=False, compare=False)  # the rows, when they are one

    FIELDS = ("count", "sum", "min", "max", "last", "increase")

    def __len__(self) -> int:
        return len(self.start)

    def block(self) -> np.ndarray:
        """Return the buckets as one (7, n) float64 array, the compact form a cache keeps."""
        return np.vstack([self.start, *(getattr(self, f) for f in self.FIELDS)]).astype(
            np.float64, copy=False
        )

    @classmethod
    def from_block(cls, block: np.ndarray) -> Rollup:
        """Return the rollup whose fields are the rows of a block (views, no copies)."""
        return cls(*block)

    def within(self, start: float, end: float) -> Rollup:
        """Return the buckets that start within [start, end]."""
        keep = (self.start >= start) & (self.start <= end)
        if keep.all():
            return self
        return Rollup(self.start[keep], *(getattr(self, f)[keep] for f in self.FIELDS))


def empty_rollup() -> Rollup:
    """Return a rollup with no buckets."""
    z = np.zeros(0)
    return Rollup(z, np.zeros(0, dtype=np.int64), z, z, z, z, z)


def roll_up(ts: np.ndarray, val: np.ndarray, prev: float, step: float) -> Rollup:
    """Summarise samples in time order into buckets of ``step`` seconds.

    ``prev`` is the value before the first sample, for counter increases (NaN: unknown, the
    first sample then adds nothing).
    """
    return roll_up_many(ts, val, np.array([prev]), np.array([len(ts)]), step)[0]


def roll_up_many(ts: np.ndarray, val: np.ndarray, prevs: np.ndarray, lengths: np.ndarray, step: float):
    """Summarise several chunks laid end to end (``lengths`` samples each) in one pass: one Rollup each."""
    finite = np.isfinite(val)
    if not finite.all():  # summaries count numbers: NaN samples and staleness markers stay raw only
        chunk_of = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(chunk_of[finite], minlength=len(lengths))
        ts, val = ts[finite], val[finite]
    prevs = np.where(np.isfinite(prevs), prevs, np.nan)
    if len(ts) == 0:
        return [empty_rollup() for _ in lengths]
    first = np.zeros(len(ts), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    first[offsets[lengths > 0]] = True
    before = np.empty_like(val)
    before[1:] = val[:-1]
    before[offsets[lengths > 0]] = prevs[lengths > 0]
    inc = np.where(val < before, val, val - before)  # a drop is a counter reset, counted from zero
    inc[np.isnan(before)] = 0.0
    b = np.floor(ts / step)
    edge = first.copy()
    edge[1:] |= b[1:] != b[:-1]
    starts = np.flatnonzero(edge)
    ends = np.append(starts[1:], len(ts))
    start = b[starts] * step
    count = (ends - starts).astype(np.int64)
    total = np.add.reduceat(val, starts)
    low = np.minimum.reduceat(val, starts)
    high = np.maximum.reduceat(val, starts)
    last = val[ends - 1]
    increase = np.add.reduceat(inc, starts)
    # Each chunk's buckets are the groups that begin inside it.
    bounds = np.searchsorted(starts, np.append(offsets, len(ts)))
    out = []
    for g0, g1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        out.append(
            Rollup(
                start[g0:g1],
                count[g0:g1],
                total[g0:g1],
                low[g0:g1],
                high[g0:g1],
                last[g0:g1],
                increase[g0:g1],
            )
        )
    return out


def merge_rollups(parts: list[Rollup]) -> Rollup:
    """Merge fragments given in the order their samples came: one bucket per start, exactly."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_rollup()
    if len(parts) == 1:
        return parts[0]
    start = np.concatenate([p.start for p in parts])
    order = np.argsort(start, kind="stable")  # within a bucket, fragments keep their order
    start = start[order]
    fields = {f: np.concatenate([getattr(p, f) for p in parts])[order] for f in Rollup.FIELDS}
    if (start[1:] != start[:-1]).all():
        return Rollup(start, **fields)
    starts = np.flatnonzero(np.append(True, start[1:] != start[:-1]))
    ends = np.append(starts[1:], len(start))
    return Rollup(
        start=start[starts],
        count=np.add.reduceat(fields["count"], starts),
        sum=np.add.reduceat(fields["sum"], starts),
        min=np.minimum.reduceat(fields["min"], starts),
        max=np.maximum.reduceat(fields["max"], starts),
        last=fields["last"][ends - 1],
        increase=np.add.reduceat(fields["increase"], starts),
    )


# ----- bytes on disk


class _Contexts:
    """A few zstd contexts lent to one thread at a time (they are not safe to share at once).

    One per thread cost 1.3 MiB for each of the server's 130 threads that ever wrote or read a chunk:
    the push path's memory grew by 90 MiB or more for contexts alone. Past ``KEPT`` idle ones, a
    context made for a busy moment is let go.
    """

    KEPT = 4

    def __init__(self, make):
        self._make = make
        self._idle: list = []
        self._lock = threading.Lock()

    @contextmanager
    def lent(self):
        with self._lock:
            context = self._idle.pop() if self._idle else None
        if context is None:
            context = self._make()
        try:
            yield context
        finally:
            with self._lock:
                if len(self._idle) < self.KEPT:
                    self._idle.append(context)


_COMPRESSORS = _Contexts(lambda: zstandard.ZstdCompressor(level=3, write_checksum=True))
_DECOMPRESSORS = _Contexts(zstandard.ZstdDecompressor)


def _compress(data: bytes) -> bytes:
    with _COMPRESSORS.lent() as context:
        return context.compress(data)


def _decompress(data: bytes) -> bytes:
    with _DECOMPRESSORS.lent() as context:
        return context.decompress(data)


def _pack(words: np.ndarray) -> bytes:
    """Lay rows of 8-byte words out byte by byte: high bytes, mostly zero, end up together."""
    rows, n = words.shape
    return np.ascontiguousarray(words.view(np.uint8).reshape(rows, n, 8).transpose(0, 2, 1)).tobytes()


def _unpack(data: bytes, rows: int, n: int) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8).reshape(rows, 8, n).transpose(0, 2, 1)
    return np.ascontiguousarray(raw).view(np.uint64).reshape(rows, n)


def _xor(bits: np.ndarray) -> np.ndarray:
    """XOR each word with the one before it in its row (Gorilla): a value that repeats becomes zero."""
    out = bits.copy()
    out[:, 1:] ^= bits[:, :-1]
    return out


def _unxor(words: np.ndarray) -> np.ndarray:
    return np.bitwise_xor.accumulate(words, axis=1)


def _dod(ms: np.ndarray) -> np.ndarray:
    """Delta-of-delta, zigzagged so that small steps either way have only low bytes set."""
    out = ms.copy()
    out[1:] = np.diff(ms)
    out[2:] = np.diff(out[1:])
    return (out << 1) ^ (out >> 63)


def _undod(words: np.ndarray) -> np.ndarray:
    zig = words.view(np.int64)
    out = (zig >> 1) ^ -(zig & 1)
    out[1:] = np.cumsum(out[1:])
    return np.cumsum(out)


def to_ms(ts: np.ndarray) -> np.ndarray:
    """Return Unix seconds as whole milliseconds, the resolution the store keeps."""
    return np.round(np.asarray(ts, dtype=np.float64) * 1000.0).astype(np.int64)


def _decimals(val: np.ndarray) -> int:
    """Return the fewest decimal digits that hold every value exactly (-1: none up to six)."""
    if not np.isfinite(val).all():  # NaNs keep their bits (a staleness marker is one) only as XORed floats
        return -1
    for k in _DECIMALS:
        scaled = np.round(val * 10.0**k)
        if np.abs(scaled).max() >= _EXACT:
            return -1
        if np.array_equal(scaled / 10.0**k, val):
            return k
    return -1


def encode_samples(ts: np.ndarray, val: np.ndarray) -> bytes:
    """Compress one series' samples (time order) into a raw chunk.

    Values that are decimals of at most six digits (counters, most gauges) are kept as the
    delta-of-delta of integers, which a steady rate turns into zeros (as VictoriaMetrics does);
    others as the XOR of each value's bits with the one before (as Prometheus does).
    """
    n = len(ts)
    val = np.ascontiguousarray(val, dtype=np.float64)
    words = np.empty((2, n), dtype=np.uint64)
    words[0] = _dod(to_ms(ts)).view(np.uint64)
    k = _decimals(val)
    if k >= 0:
        words[1] = _dod(np.round(val * 10.0**k).astype(np.int64)).view(np.uint64)
    else:
        words[1] = val.view(np.uint64)
        words[1:] = _xor(words[1:])
    body = _CODEC.pack(k) + _compress(_pack(words))
    return _HEADER.pack(RAW_MAGIC, n) + body


def decode_samples(blob: bytes) -> np.ndarray:
    """Return a raw chunk as a (2, n) array of timestamps and values; raise ChunkDamaged when its
    bytes are wrong."""
    try:
        (k,) = _CODEC.unpack_from(blob, _HEADER.size)
    except struct.error as exc:
        raise ChunkDamaged(str(exc)) from None
    n, body = _open(blob[: _HEADER.size] + blob[_HEADER.size + _CODEC.size :], RAW_MAGIC, 16)
    words = _unpack(body, 2, n)
    out = np.empty((2, n))
    out[0] = _undod(words[0]) / 1000.0
    if k >= 0:
        out[1] = _undod(words[1]) / 10.0**k
    elif k == -1:
        out[1] = _unxor(words[1:])[0].view(np.float64)
    else:
        raise ChunkDamaged(f"unknown value codec {k}")
    return out


def encode_rollup(r: Rollup, step: float) -> bytes:
    """Compress a rollup fragment: bucket numbers as deltas, counts, and values XORed, byte by byte."""
    n = len(r)
    words = np.empty((7, n), dtype=np.uint64)
    buckets = np.round(r.start / step).astype(np.int64)
    words[0, 0] = buckets[0]
    words[0, 1:] = np.diff(buckets).view(np.uint64)
    words[1] = np.asarray(r.count).astype(np.int64).view(np.uint64)
    values = r.block()[2:] if r._block is not None else np.vstack([getattr(r, f) for f in Rollup.FIELDS[1:]])
    words[2:] = _xor(np.ascontiguousarray(values, dtype=np.float64).view(np.uint64))
    return _HEADER.pack(ROLLUP_MAGIC, n) + _compress(_pack(words))


def decode_rollup(blob: bytes, step: float) -> np.ndarray:
    """Return a rollup fragment as a (7, n) block (see Rollup.from_block); raise ChunkDamaged when
    its bytes are wrong."""
    n, body = _open(blob, ROLLUP_MAGIC, 56)
    words = _unpack(body, 7, n)
    out = np.empty((7, n))
    out[0] = np.cumsum(words[0].view(np.int64)) * step
    out[1] = words[1].view(np.int64)
    out[2:] = _unxor(words[2:]).view(np.float64)
    return out


def _open(blob: bytes, magic: bytes, per_item: int) -> tuple[int, bytes]:
    try:
        found, n = _HEADER.unpack_from(blob)
        if found != magic:
            raise ChunkDamaged(f"not a chunk (header {found!r})")
        body = _decompress(blob[_HEADER.size :])
    except (struct.error, zstandard.ZstdError) as exc:
        raise ChunkDamaged(str(exc)) from None
    if len(body) != per_item * n:
        raise ChunkDamaged(f"{len(body)} bytes for {n} items")
    return n, body
