"""InfluxDB line protocol, as Telegraf and the InfluxDB clients write it, read into samples.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``: each numeric field becomes a
sample of ``<measurement>_<field>`` (Telegraf's Prometheus naming: characters a Prometheus name cannot
hold become ``_``), tags become labels, booleans 1 and 0. A string field cannot be a sample: it is
refused by itself, with the reason, and the rest of the line stands. A line that cannot be read at all
is an error naming the line, and the request stores nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ingest.batch import Batch, Rows
from ingest.incoming import BodyError

# Seconds per unit of a timestamp, by the precision parameter of InfluxDB 1 (n, u, ms, s, m, h) and 2.
PRECISIONS = {
    "ns": 1e-9,
    "n": 1e-9,
    "us": 1e-6,
    "u": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
TRUE = {"t", "T", "true", "True", "TRUE"}
FALSE = {"f", "F", "false", "False", "FALSE"}
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+[iu]")


class LineError(BodyError):
    """A line that is not line protocol; the message names the line and what is wrong."""

    def __init__(self, message: str, line: int):
        super().__init__(message, f"line {line}")
        self.line = line


@dataclass(frozen=True)
class Skipped:
    """A field that is not a number, left out with the reason."""

    line: int
    field: str
    reason: str


def metric_name(measurement: str, field: str) -> str:
    """Return the Prometheus name of a measurement's field."""
    name = _NOT_NAME.sub("_", f"{measurement}_{field}")
    return f"_{name}" if name[0].isdigit() else name


def label_name(tag: str) -> str:
    """Return the Prometheus label name of a tag key."""
    name = _NOT_LABEL.sub("_", tag)
    return f"_{name}" if not name or name[0].isdigit() else name


def _split(text: str, separators: str, line: int, quotes: bool = False) -> list[str]:
    """Split at unescaped separators (outside double quotes when ``quotes``), keeping escapes."""
    parts, current, i, quoted = [], [], 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        if c in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if quoted:
        raise LineError(f"line {line}: a string field's closing quote is missing", line)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _field_value(raw: str, line: int, key: str) -> float | str:
    """Return a field's number, or its text when it is a string; raise LineError when it is neither."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise LineError(f"line {line}: field {key}: a string must end with a quote", line)
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in TRUE:
        return 1.0
    if raw in FALSE:
        return 0.0
    if _INTEGER.fullmatch(raw):
        number = int(raw[:-1]) if len(raw) <= 22 else None  # digits enough for any 64-bit integer
        low, high = (0, 2**64 - 1) if raw.endswith("u") else (-(2**63), 2**63 - 1)
        if number is None or not low <= number <= high:
            kind = "an unsigned" if raw.endswith("u") else "a signed"
            raise LineError(
                f"line {line}: field {key}: {raw[:40]!r} does not fit in {kind} 64-bit integer", line
            )
        return float(number)
    if _NUMBER.fullmatch(raw) and len(raw) <= 400:
        return float(raw)
    raise LineError(f"line {line}: field {key}: {raw!r} is not a number, a boolean or a quoted string", line)


def parse(
    body: str, precision: str, now: float, expect: Callable[[int], None] = lambda count: None
) -> tuple[Batch, list[Skipped]]:
    """Read a request body of line protocol; raise LineError at the first line that cannot be read.

    ``expect(count)`` is asked before each line's samples are made, and refuses past the cap.
    """
    scale = PRECISIONS[precision]
    samples = Rows()
    skipped: list[Skipped] = []
    for number, text in enumerate(body.splitlines(), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p for p in _split(text, " ", number, quotes=True) if p != ""]
        if len(parts) not in (2, 3):
            raise LineError(
                f"line {number}: expected 'measurement[,tags] fields [timestamp]', got {len(parts)} parts",
                number,
            )
        head = _split(parts[0], ",", number)
        measurement = _unescape(head[0])
        if not measurement:
            raise LineError(f"line {number}: the measurement name is missing", number)
        labels = {}
        for tag in head[1:]:
            pair = _split(tag, "=", number)
            if len(pair) != 2 or not pair[0] or not pair[1]:
                raise LineError(f"line {number}: tag {tag!r} is not key=value", number)
            labels[label_name(_unescape(pair[0]))] = _unescape(pair[1])
        stamp = now
        if len(parts) == 3:
            if not re.fullmatch(r"-?\d{1,19}", parts[2]) or abs(int(parts[2])) >= 2**63:
                raise LineError(f"line {number}: timestamp {parts[2][:40]!r} is not a 64-bit integer", number)
            stamp = int(parts[2]) * scale
        fields = _split(parts[1], ",", number, quotes=True)
        expect(len(samples) + len(fields))
        for field in fields:
            pair = _split(field, "=", number, quotes=True)
            if len(pair) != 2 or not pair[0] or not pair[1]:
                raise LineError(f"line {number}: field {field!r} is not key=value", number)
            key = _unescape(pair[0])
            value = _field_value(pair[1], number, key)
            if isinstance(value, str):
                skipped.append(
                    Skipped(number, key, "a string is not a number: only numbers and booleans are kept")
                )
                continue
            name = metric_name(measurement, key)
            samples.add(name, labels, value, stamp, f"line {number}, field {key}")
    return samples.batch(), skipped
