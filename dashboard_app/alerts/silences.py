"""Silences: mute a rule's alerts, or the alerts whose labels match, until a time.

A muted alert still shows (as muted) on the Alerts page and in the API, but nobody is notified of it;
once its silence ends (expired or removed) an alert still firing is notified then. Silences are kept
in the data directory's ``silences.json`` and drop out on their own once expired.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from layouts.validation import parse_duration
from tsdb.persistence import load_json, write_atomically

MAX_SPAN = 366 * 86400  # a silence ends within a year: a mute forever is a disabled rule


class SilenceError(ValueError):
    """A silence that cannot be made; ``field`` names what is wrong."""

    def __init__(self, message: str, field: str, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    rule_id: str | None = Field(None, description="Mute this rule's alerts (with labels: those matching).")
    labels: dict[str, str] = Field(default_factory=dict, description="Mute alerts with all these labels.")
    until: float = Field(description="Unix time the silence ends.")
    reason: str
    created_by: str
    created_at: float

    def matches(self, alert: Mapping) -> bool:
        if self.rule_id is not None and alert["rule_id"] != self.rule_id:
            return False
        return all(alert["labels"].get(k) == v for k, v in self.labels.items())


_SAVED = TypeAdapter(list[Silence])


class Silences:
    """The silences in force, saved to a file on every change."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self.problems: list[str] = []
        saved = load_json(path, _SAVED.validate_python, self.problems) if path else None
        self._all: dict[str, Silence] = {s.id: s for s in saved or ()}

    def active(self) -> list[Silence]:
        """The silences not yet ended, soonest to end first (ended ones are forgotten)."""
        now = self.clock()
        with self._lock:
            ended = [i for i, s in self._all.items() if s.until <= now]
            for silence_id in ended:
                del self._all[silence_id]
            if ended:
                try:
                    self._save(self._all)
                except OSError:  # the ended ones are gone from memory anyway; the next save drops them
                    pass
            return sorted(self._all.values(), key=lambda s: s.until)

    def add(
        self, rule_id: str | None, labels: Mapping[str, str], until: float, reason: str, who: str
    ) -> Silence:
        now = self.clock()
        if not rule_id and not labels:
            raise SilenceError("a silence names a rule_id, labels, or both", "rule_id")
        if not isinstance(reason, str) or not reason.strip():
            raise SilenceError("say why (reason): the audit log and the Alerts page show it", "reason")
        if not isinstance(until, int | float) or not math.isfinite(until):
            raise SilenceError("until must be a time (Unix seconds or RFC 3339)", "until")
        if until <= now:
            raise SilenceError("until is in the past: a silence ends later than now", "until")
        if until > now + MAX_SPAN:
            raise SilenceError("a silence ends within a year; disable the rule to mute it for good", "until")
        try:
            silence = Silence(
                id=secrets.token_hex(6),
                rule_id=rule_id or None,
                labels=dict(labels),
                until=until,
                reason=reason.strip()[:500],
                created_by=who,
                created_at=now,
            )
        except ValidationError as exc:
            raise SilenceError(str(exc.errors()[0]["msg"]), "labels") from None
        with self._lock:
            self._save({**self._all, silence.id: silence})  # on disk first: a failed save changes nothing
            self._all[silence.id] = silence
        return silence

    def request(
        self,
        rules: Mapping[str, object],
        rule_id: object,
        labels: object,
        until: object,
        span: object,
        reason: object,
        who: str,
    ) -> Silence:
        """Make a silence from what a person gave (the API's body, the Alerts page's form): a rule
        among ``rules`` (those they may see), labels, and ``until`` (Unix seconds) or ``span`` (a
        duration such as 2h); raise SilenceError naming the field at fault."""
        if rule_id is not None and not isinstance(rule_id, str):
            raise SilenceError("rule_id must be a rule's id", "rule_id")
        if rule_id and rule_id not in rules:
            raise SilenceError(f"no rule {rule_id!r}", "rule_id", 404)
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise SilenceError("labels must map label names to values (strings)", "labels")
        if (until is None) == (span is None):
            raise SilenceError("give until (a time) or for (a duration), one of them", "until")
        if span is not None:
            try:
                until = self.clock() + parse_duration(span)
            except ValueError as exc:
                raise SilenceError(f"for: {exc}", "for") from None
        if isinstance(until, bool):
            raise SilenceError("until must be a time (Unix seconds or RFC 3339)", "until")
        return self.add(rule_id or None, labels, until, reason, who)

    def remove(self, silence_id: str) -> Silence | None:
        with self._lock:
            silence = self._all.get(silence_id)
            if silence is not None:
                self._save({k: v for k, v in self._all.items() if k != silence_id})
                del self._all[silence_id]
            return silence

    def muting(self, alert: Mapping) -> Silence | None:
        """The silence that mutes an alert now, if any."""
        return next((s for s in self.active() if s.matches(alert)), None)

    def _save(self, silences: dict[str, Silence]) -> None:
        """Write the silences as they are to be; raise OSError, changing nothing, when that fails."""
        if self.path is not None:
            write_atomically(self.path, _SAVED.dump_json(list(silences.values()), indent=1).decode())
