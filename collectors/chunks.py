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
from dataclasses import dataclass

import numpy as np
import zstandard

RAW_MAGIC = b"PBr1"
ROLLUP_MAGIC = b"PBu1"
_HEADER = struct.Struct("<4sI")  # magic, sample or bucket count
_local = threading.local()


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

    FIELDS = ("count", "sum", "min", "max", "last", "increase")

    def __len__(self) -> int:
        return len(self.start)

    @property
    def nbytes(self) -> int:
        return self.start.nbytes * 7

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


def increases(val: np.ndarray, prev: float) -> np.ndarray:
    """Return each sample's counter increase over the one before; a drop is a reset, counted from zero.

    ``prev`` is the value before the first sample (NaN when unknown: the first then adds nothing).
    """
    before = np.empty_like(val)
    before[0] = prev
    before[1:] = val[:-1]
    inc = np.where(val < before, val, val - before)
    inc[np.isnan(before)] = 0.0
    return inc


def roll_up(ts: np.ndarray, val: np.ndarray, prev: float, step: float) -> Rollup:
    """Summarise samples in time order into buckets of ``step`` seconds."""
    if len(ts) == 0:
        return empty_rollup()
    inc = increases(val, prev)
    b = np.floor(ts / step)
    starts = np.flatnonzero(np.append(True, b[1:] != b[:-1]))
    ends = np.append(starts[1:], len(ts))
    return Rollup(
        start=b[starts] * step,
        count=(ends - starts).astype(np.int64),
        sum=np.add.reduceat(val, starts),
        min=np.minimum.reduceat(val, starts),
        max=np.maximum.reduceat(val, starts),
        last=val[ends - 1],
        increase=np.add.reduceat(inc, starts),
    )


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


def _compressor() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "zstd", None)
    if pair is None:  # zstd contexts are not safe to share between threads
        pair = (zstandard.ZstdCompressor(level=3, write_checksum=True), zstandard.ZstdDecompressor())
        _local.zstd = pair
    return pair


def _shuffle(words: np.ndarray) -> bytes:
    """Group the bytes of 8-byte words by position: high bytes, mostly zero, end up together."""
    return np.ascontiguousarray(words.view(np.uint8).reshape(-1, 8).T).tobytes()


def _unshuffle(data: bytes, n: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(8, n).T.copy().view(np.uint64).ravel()


def _xor(values: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    out = bits.copy()
    out[1:] ^= bits[:-1]
    return out


def _unxor(words: np.ndarray) -> np.ndarray:
    return np.bitwise_xor.accumulate(words).view(np.float64)


def _dod(ms: np.ndarray) -> np.ndarray:
    out = ms.copy()
    if len(ms) > 1:
        out[1:] = np.diff(ms)
    if len(ms) > 2:
        out[2:] = np.diff(out[1:])
    return out


def _undod(dod: np.ndarray) -> np.ndarray:
    out = dod.copy()
    if len(out) > 2:
        out[1:] = np.cumsum(out[1:])
    return np.cumsum(out)


def to_ms(ts: np.ndarray) -> np.ndarray:
    """Return Unix seconds as whole milliseconds, the resolution the store keeps."""
    return np.round(np.asarray(ts, dtype=np.float64) * 1000.0).astype(np.int64)


def encode_samples(ts: np.ndarray, val: np.ndarray) -> bytes:
    """Compress one series' samples (time order) into a raw chunk."""
    n = len(ts)
    body = _shuffle(_dod(to_ms(ts)).view(np.uint64)) + _shuffle(_xor(val))
    return _HEADER.pack(RAW_MAGIC, n) + _compressor()[0].compress(body)


def decode_samples(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return (timestamps, values) of a raw chunk; raise ChunkDamaged when its bytes are wrong."""
    n, body = _open(blob, RAW_MAGIC, 16)
    ms = _undod(_unshuffle(body[: 8 * n], n).view(np.int64))
    return ms / 1000.0, _unxor(_unshuffle(body[8 * n :], n))


def encode_rollup(r: Rollup, step: float) -> bytes:
    """Compress a rollup fragment: bucket numbers as deltas, counts and values as shuffled words."""
    n = len(r)
    buckets = np.round(r.start / step).astype(np.int64)
    deltas = buckets.copy()
    deltas[1:] = np.diff(buckets)
    parts = [_shuffle(deltas.view(np.uint64)), _shuffle(r.count.astype(np.int64).view(np.uint64))]
    parts += [_shuffle(_xor(getattr(r, f))) for f in Rollup.FIELDS[1:]]
    return _HEADER.pack(ROLLUP_MAGIC, n) + _compressor()[0].compress(b"".join(parts))


def decode_rollup(blob: bytes, step: float) -> Rollup:
    """Return the buckets of a rollup fragment; raise ChunkDamaged when its bytes are wrong."""
    n, body = _open(blob, ROLLUP_MAGIC, 56)
    words = [_unshuffle(body[i * 8 * n : (i + 1) * 8 * n], n) for i in range(7)]
    buckets = np.cumsum(words[0].view(np.int64))
    return Rollup(
        buckets * step,
        words[1].view(np.int64),
        *(_unxor(w) for w in words[2:]),
    )


def _open(blob: bytes, magic: bytes, per_item: int) -> tuple[int, bytes]:
    try:
        found, n = _HEADER.unpack_from(blob)
        if found != magic:
            raise ChunkDamaged(f"not a chunk (header {found!r})")
        body = _compressor()[1].decompress(blob[_HEADER.size :])
    except (struct.error, zstandard.ZstdError) as exc:
        raise ChunkDamaged(str(exc)) from None
    if len(body) != per_item * n:
        raise ChunkDamaged(f"{len(body)} bytes for {n} items")
    return n, body
