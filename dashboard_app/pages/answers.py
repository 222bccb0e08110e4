"""Answers shared by every viewer: a panel's figure for one view and data version is computed once.

Every viewer of the same dashboard, window, step, variables and theme who may read the same levels
asks for the same answer as long as no new sample arrived for the panel's series. The first one
computes it; the others, asking meanwhile or later, get the same serialised bytes from a cache
bounded by the bytes it holds (``dashboards.cache_size``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from plotly.io.json import to_json_plotly


@dataclass(frozen=True)
class Answer:
    """One computed answer: what the browser gets, serialised once, and the token that names it.

    ``view`` says who may be given it or a patch from it: the same (dashboard, panel, variables,
    theme, levels); ``plain`` is the figure as the browser holds it (numbers, strings, lists, None
    for gaps), from which patches are worked out.
    """

    view: tuple
    token: str
    plain: Any
    json: bytes

    @property
    def fragment(self) -> orjson.Fragment:
        """The serialised answer, which a callback returns as it is (no second serialisation)."""
        return orjson.Fragment(self.json)


def answer_of(view: tuple, figure: Any) -> Answer:
    """Serialise a computed figure once, as Dash would, and name it by its bytes."""
    raw = to_json_plotly(figure).encode()
    return Answer(view, hashlib.blake2b(raw, digest_size=9).hexdigest(), orjson.loads(raw), raw)


@dataclass
class _Entry:
    value: Any
    size: int


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)


class SharedAnswers:
    """A least-recently-used cache of computed answers, bounded by their bytes, computed once per key.

    Viewers asking for a key that is being computed wait for that computation instead of
    starting their own.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._tokens: dict[str, Any] = {}  # answer token -> its key, to find what a viewer holds
        self._flights: dict[Any, _Flight] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.computed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any, compute: Callable[[], Any], size: Callable[[Any], int] | None = None) -> Any:
        """Return the value for ``key``, computing it with ``compute()`` only if nobody has yet."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry.value
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    break
            flight.done.wait(30)
        try:
            value = compute()
            self._put(key, value, size(value) if size else _size(value))
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def peek(self, key: Any) -> Any | None:
        """Return the value held for ``key``, or None, without computing it."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.value if entry is not None else None

    def by_token(self, token: Any) -> Answer | None:
        """Return the answer a viewer's render state names, if it is still held."""
        if not isinstance(token, str):
            return None
        with self._lock:
            key = self._tokens.get(token)
            entry = self._entries.get(key) if key is not None else None
            return entry.value if entry is not None and isinstance(entry.value, Answer) else None

    def _put(self, key: Any, value: Any, size: int) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(key, old)
            if size > self.max_bytes:
                return  # larger than the whole cache: served once, never kept
            self._entries[key] = _Entry(value, size)
            self.bytes += size
            if isinstance(value, Answer):
                self._tokens[value.token] = key
            self.computed += 1
            while self.bytes > self.max_bytes:
                gone, evicted = self._entries.popitem(last=False)
                self._forget(gone, evicted)

    def _forget(self, key: Any, entry: _Entry) -> None:
        self.bytes -= entry.size
        if isinstance(entry.value, Answer) and self._tokens.get(entry.value.token) == key:
            del self._tokens[entry.value.token]


def _size(value: Any) -> int:
    if isinstance(value, Answer):
        return 2 * len(value.json) + 200  # the bytes and the parsed copy beside them
    if isinstance(value, bytes | str):
        return len(value) + 100
    return 200
