"""Running totals of pushed counters, shared by replicas: a counter's push carries an increment, and the
server is sent the total, which every replica must add to the same number.

A push that has increments locks its series' rows (in a fixed order, so two pushes never wait on each
other in a circle), adds to them, forwards the totals and writes them back only once the server has
acknowledged: a push the server refuses leaves the totals as they were, and two pushes of one series
reach the server one after the other, in the order of their totals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dashboard_app.state.database import running_totals
from tsdb.metrics import Labels

Add = Callable[[str, Labels, float], float]  # (name, labels, increment) -> the series' new total


def series_key(name: str, labels: Labels) -> str:
    text = name + "\0" + "\0".join(f"{k}\1{v}" for k, v in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()


class RunningTotals:
    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def adding(self, series: list[tuple[str, Labels]]) -> Iterator[Add]:
        """Lock the totals of ``series`` and hand over a function adding an increment to one; the
        totals are written when the block ends without an error, and left as they were otherwise.
        A block that adds nothing (a push of gauges) opens no transaction."""
        keys = sorted({series_key(name, labels) for name, labels in series})
        with ExitStack() as stack:
            db: Connection | None = None
            totals: dict[str, float] = {}
            start: dict[str, float] = {}

            def lock(more: list[str]) -> None:
                nonlocal db
                if db is None:
                    db = stack.enter_context(self.engine.begin())
                start.update(_locked(db, more))
                totals.update({key: start[key] for key in more})

            if keys:
                lock(keys)

            def add(name: str, labels: Labels, increment: float) -> float:
                key = series_key(name, labels)
                if key not in totals:  # a series not named beforehand: locked as it comes
                    lock([key])
                totals[key] += increment
                return totals[key]

            yield add
            for key, total in totals.items():
                if total != start[key]:
                    db.execute(
                        update(running_totals).where(running_totals.c.series == key).values(total=total)
                    )


def _locked(db: Connection, keys: list[str]) -> dict[str, float]:
    """Make the rows that do not exist, then read them all, locked until the transaction ends."""
    if not keys:
        return {}
    insert = postgres_insert if db.dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(running_totals).on_conflict_do_nothing(), [{"series": key, "total": 0.0} for key in keys]
    )  # on SQLite this write also takes the database's write lock, held to the end
    rows = db.execute(
        select(running_totals.c.series, running_totals.c.total)
        .where(running_totals.c.series.in_(keys))
        .order_by(running_totals.c.series)
        .with_for_update()
    ).all()
    return dict(rows)
