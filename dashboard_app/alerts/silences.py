"""Silences: mute a rule's alerts, or the alerts whose labels match, until a time.

A muted alert still shows (as muted) on the Alerts page and in the API, but nobody is notified of it;
once its silence ends (expired or removed) an alert still firing is notified then. Silences are kept
in the state database, so a silence made on one replica mutes on all of them, and drop out on their
own once expired.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine, delete, insert, select

from dashboard_app.state.database import FRESH_FOR, import_once, memory_database
from dashboard_app.state.database import silences as silences_table
from layouts.validation import parse_duration
from tsdb.persistence import load_json

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
    """The silences in force, in the state database (re-read at most once a second).
    ``file`` is the silences.json of earlier versions, imported once."""

    def __init__(
        self, engine: Engine | None, clock: Callable[[], float] = time.time, file: Path | None = None
    ):
        self.engine = engine if engine is not None else memory_database()
        self.clock = clock
        self._lock = threading.Lock()
        self.problems: list[str] = []
        self._read: tuple[float, list[Silence]] | None = None  # (monotonic time, active) as last read
        if file is not None:
            self._import(file)

    def active(self) -> list[Silence]:
        """The silences not yet ended, soonest to end first (ended ones are forgotten)."""
        now = self.clock()
        with self._lock:
            if self._read is not None and time.monotonic() - self._read[0] < FRESH_FOR:
                return [s for s in self._read[1] if s.until > now]
            with self.engine.connect() as db:
                rows = db.execute(select(silences_table).order_by(silences_table.c.until)).all()
            found = [_row_silence(r) for r in rows if r.until > now]
            if len(found) < len(rows):  # a write only when one has ended
                with self.engine.begin() as db:
                    db.execute(delete(silences_table).where(silences_table.c.until <= now))
            self._read = (time.monotonic(), found)
            return found

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
        with self.engine.begin() as db:  # stored first: a failed write changes nothing
            db.execute(insert(silences_table).values(**_silence_row(silence)))
        self._read = None
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
        """End a silence now (on every replica); None when there is no such silence."""
        with self.engine.begin() as db:
            row = db.execute(select(silences_table).where(silences_table.c.id == silence_id)).first()
            if row is not None:
                db.execute(delete(silences_table).where(silences_table.c.id == silence_id))
        self._read = None
        return _row_silence(row) if row is not None else None

    def muting(self, alert: Mapping) -> Silence | None:
        """The silence that mutes an alert now, if any."""
        return next((s for s in self.active() if s.matches(alert)), None)

    def _import(self, file: Path) -> None:
        """Bring the silences.json of earlier versions into the database, once."""
        if not file.is_file():
            return
        saved = load_json(file, _SAVED.validate_python, self.problems) or []
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED, file):
                return
            for silence in saved:
                if not db.execute(
                    select(silences_table.c.id).where(silences_table.c.id == silence.id)
                ).first():
                    db.execute(insert(silences_table).values(**_silence_row(silence)))


IMPORTED = "silences file imported"


def _silence_row(silence: Silence) -> dict:
    row = silence.model_dump()
    row["labels"] = json.dumps(row["labels"], sort_keys=True)
    return row


def _row_silence(row) -> Silence:
    data = dict(row._mapping)
    data["labels"] = json.loads(data["labels"])
    return Silence(**data)
