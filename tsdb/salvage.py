"""Read back what a damaged store file still holds, page by page, as SQLite's own recovery does.

A damaged page of a table's tree (its root, an interior page, a leaf's cell pointers) hides every row
below it from SQL, though the rows themselves sit intact in other pages. So the file is read as pages:
every table leaf page that is not free is parsed, its cells decoded into records (overflow chains
followed), and each record is recognised by its shape as a row of one of the store's tables. Pages of
the log (``-wal``) committed after them take their place, as SQLite would read them. What cannot be
read is counted, never guessed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

LEAF = 0x0D  # a table b-tree leaf page
_HEADER = 100  # the file header, at the start of page 1
_WAL_HEADER, _FRAME_HEADER = 32, 24


@dataclass
class Salvaged:
    """Rows found in a damaged file, by table, and what could not be read."""

    series: dict[int, tuple] = field(default_factory=dict)  # id -> (name, labels, sealed_until, sealed_last)
    chunks: dict[int, tuple] = field(default_factory=dict)  # id -> (series, step, start, end, samples, data)
    wal: dict[int, bytes] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    damaged: list[tuple] = field(default_factory=list)
    unreadable_pages: int = 0
    unreadable_rows: int = 0


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _record(payload: bytes) -> list:
    """Decode a record (SQLite's serial types) into its values."""
    size, at = _varint(payload, 0)
    types = []
    while at < size:
        kind, at = _varint(payload, at)
        types.append(kind)
    values, at = [], size
    for kind in types:
        if kind == 0:
            values.append(None)
        elif 1 <= kind <= 6:
            width = (1, 2, 3, 4, 6, 8)[kind - 1]
            values.append(int.from_bytes(payload[at : at + width], "big", signed=True))
            at += width
        elif kind == 7:
            values.append(struct.unpack(">d", payload[at : at + 8])[0])
            at += 8
        elif kind in (8, 9):
            values.append(kind - 8)
        elif kind >= 12:
            length = (kind - 12) // 2
            chunk = payload[at : at + length]
            if len(chunk) != length:
                raise ValueError("a record runs past its payload")
            values.append(chunk if kind % 2 == 0 else chunk.decode("utf-8"))
            at += length
        else:
            raise ValueError(f"serial type {kind} is not one SQLite writes")
    return values


class _File:
    """The pages of a database file, with the newest committed copy of each from its ``-wal`` file."""

    def __init__(self, path: Path):
        data = path.read_bytes()
        if len(data) < _HEADER or not data.startswith(b"SQLite format 3\x00"):
            raise ValueError("not an SQLite file")
        size = int.from_bytes(data[16:18], "big")
        self.size = 65536 if size == 1 else size
        self.usable = self.size - data[20]
        self.pages = {n + 1: data[n * self.size : (n + 1) * self.size] for n in range(len(data) // self.size)}
        self._overlay(path.with_name(path.name + "-wal"))
        first = self.pages.get(1, b"")
        self.free = self._freelist(int.from_bytes(first[32:36], "big")) if first else set()

    def _overlay(self, wal: Path) -> None:
        if not wal.exists():
            return
        data = wal.read_bytes()
        frame = _FRAME_HEADER + self.size
        salts = data[16:24]
        pending: dict[int, bytes] = {}
        for at in range(_WAL_HEADER, len(data) - frame + 1, frame):
            if data[at + 8 : at + 16] != salts:
                break  # a frame of an earlier round of the log: already in the file, or never committed
            number = int.from_bytes(data[at : at + 4], "big")
            pending[number] = data[at + _FRAME_HEADER : at + frame]
            if int.from_bytes(data[at + 4 : at + 8], "big"):  # a commit frame: the pages so far count
                self.pages.update(pending)
                pending = {}

    def _freelist(self, trunk: int) -> set[int]:
        free, seen = set(), set()
        while trunk and trunk not in seen and trunk in self.pages:
            seen.add(trunk)
            free.add(trunk)
            page = self.pages[trunk]
            count = int.from_bytes(page[4:8], "big")
            for i in range(min(count, (self.usable - 8) // 4)):
                free.add(int.from_bytes(page[8 + 4 * i : 12 + 4 * i], "big"))
            trunk = int.from_bytes(page[0:4], "big")
        return free

    def payload(self, page: bytes, at: int) -> tuple[int, bytes]:
        """Return (rowid, payload) of the table leaf cell at ``at``, following its overflow pages."""
        total, at = _varint(page, at)
        rowid, at = _varint(page, at)
        most = self.usable - 35
        if total <= most:
            return rowid, page[at : at + total]
        least = (self.usable - 12) * 32 // 255 - 23
        local = least + (total - least) % (self.usable - 4)
        local = local if local <= most else least
        parts = [page[at : at + local]]
        following = int.from_bytes(page[at + local : at + local + 4], "big")
        got, seen = local, set()
        while got < total:
            if following in seen or following not in self.pages:
                raise ValueError("an overflow chain is broken")
            seen.add(following)
            over = self.pages[following]
            piece = over[4 : 4 + min(self.usable - 4, total - got)]
            parts.append(piece)
            got += len(piece)
            following = int.from_bytes(over[0:4], "big")
        return rowid, b"".join(parts)

    def leaves(self):
        """Yield (page number, page, where its header starts) of every table leaf page in use."""
        for number, page in self.pages.items():
            if number in self.free:
                continue
            start = _HEADER if number == 1 else 0
            if len(page) > start and page[start] == LEAF:
                yield number, page, start


def read(path: Path) -> Salvaged:
    """Return every row of the store's tables that the file (and its log) still holds."""
    file = _File(path)
    found = Salvaged()
    for _, page, start in file.leaves():
        try:
            cells = int.from_bytes(page[start + 3 : start + 5], "big")
            pointers = [
                int.from_bytes(page[start + 8 + 2 * i : start + 10 + 2 * i], "big") for i in range(cells)
            ]
        except IndexError:
            found.unreadable_pages += 1
            continue
        for pointer in pointers:
            try:
                if not start + 8 <= pointer < file.usable:
                    raise ValueError("a cell pointer points outside its page")
                rowid, payload = file.payload(page, pointer)
                _keep(found, rowid, _record(payload))
            except (ValueError, IndexError, UnicodeDecodeError, struct.error):
                found.unreadable_rows += 1
    return found


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _keep(found: Salvaged, rowid: int, values: list) -> None:
    """File one record under the table its shape says it belongs to (others: SQLite's own, indexes)."""
    if len(values) == 5 and values[0] is None and isinstance(values[1], str) and isinstance(values[2], str):
        if _number(values[3]) and (values[4] is None or _number(values[4])):
            found.series[rowid] = (values[1], values[2], float(values[3]), values[4])
            return
    if len(values) == 7 and values[0] is None and isinstance(values[6], bytes):
        if all(_number(v) for v in values[1:6]):
            found.chunks[rowid] = tuple(values[1:7])
            return
    if len(values) == 7 and isinstance(values[4], bytes) and isinstance(values[5], str):
        found.damaged.append(tuple(values))
        return
    if len(values) == 2 and values[0] is None and isinstance(values[1], bytes):
        found.wal[rowid] = values[1]
        return
    if len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], str):
        found.meta[values[0]] = values[1]
