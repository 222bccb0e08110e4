"""Pushed metrics' definitions in the state database: a metric registered on one replica can be pushed
to any of them. The custom_metrics.json of earlier versions is imported once."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from dashboard_app.state.database import FRESH_FOR, import_once, metric_definitions
from ingest.definitions_file import declaration, load_definitions
from ingest.registration import MetricError, registration
from tsdb.metrics import MetricSpec

IMPORTED = "custom metrics file imported"


class SavedDefinitions:
    fresh_for = FRESH_FOR  # seconds between two looks for definitions registered on other replicas

    def __init__(self, engine: Engine, file: Path | None = None):
        self.engine = engine
        self.problems: list[str] = []
        if file is not None and file.is_file():
            found = load_definitions(file, self.problems)
            with self.engine.begin() as db:
                if import_once(db, IMPORTED, file):
                    for spec in found:
                        self._insert(db, spec)

    def all(self, names: list[str] | None = None) -> list[MetricSpec]:
        """Every definition kept, or those of ``names``."""
        query = select(metric_definitions.c.definition)
        if names is not None:
            query = query.where(metric_definitions.c.name.in_(names[:1000]))
        with self.engine.connect() as db:
            rows = db.execute(query).scalars().all()
        return [declaration(json.loads(text)) for text in rows]

    def add(self, spec: MetricSpec) -> None:
        """Keep a new definition; 409 when another replica registered the name meanwhile."""
        try:
            with self.engine.begin() as db:
                self._insert(db, spec)
        except IntegrityError:
            raise MetricError(
                f"{spec.name} was registered at the same moment elsewhere; look it up and send again",
                409,
                "name",
            ) from None

    @staticmethod
    def _insert(db, spec: MetricSpec) -> None:
        row = metric_definitions.c
        if db.execute(select(row.name).where(row.name == spec.name)).first():
            return
        text = json.dumps(registration(spec))
        db.execute(insert(metric_definitions).values(name=spec.name, definition=text))
