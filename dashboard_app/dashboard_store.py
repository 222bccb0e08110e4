"""The dashboards a Pulseboard serves, as versioned documents: the shipped YAML files and those saved since.

Saved dashboards live in the state database (SQLite in the data directory, or the PostgreSQL replicas
share): the current document of each, and every version with who saved it and when, so any version can
be read back and restored. A save names the version it was made from; if another save came in between
(on this replica or another), it is refused (409) instead of overwriting it: the version is compared and
bumped in one statement. A shipped dashboard is version 0 of itself; an admin's saves stand in front of
it until deleted. Each replica re-reads what changed at most once a second.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dashboard_app.config_dir import ConfigDir
from dashboard_app.state.database import (
    FRESH_FOR,
    dashboard_versions,
    dashboards,
    import_once,
    memory_database,
)
from layouts.dashboards import load_dashboard, load_dashboards, parse_dashboard, read_yaml
from layouts.schema import Dashboard, id_for

KEPT_VERSIONS = 100  # versions kept per dashboard; older ones are removed as new ones are saved
IMPORTED_FILES = "dashboards files imported"


class DashboardError(ValueError):
    """A dashboard request that cannot be carried out; ``status`` answers it over HTTP."""

    def __init__(self, message: str, status: int = 400, field: str | None = None, **details):
        super().__init__(message)
        self.status = status
        self.field = field
        self.details = details


def document(dashboard: Dashboard) -> dict:
    """The dashboard as its file says it: id, title and access first, defaults left out."""
    data = dashboard.model_dump(mode="json", exclude_defaults=True)
    return {"id": dashboard.id, "title": dashboard.title, "access": dashboard.access, **data}


def parse_document(data: object) -> Dashboard:
    """Validate a dashboard definition with the one schema; DashboardError names what is wrong."""
    if not isinstance(data, dict):
        raise DashboardError("the body must be a dashboard object", field="body")
    try:
        return parse_dashboard(data, "dashboard")
    except ValueError as exc:
        raise DashboardError(str(exc).replace("\n", "; "), field="body") from None


def document_text(dashboard: Dashboard) -> str:
    """The dashboard as its YAML file has it (what is stored, and what Download YAML gives)."""
    return yaml.safe_dump(document(dashboard), sort_keys=False, allow_unicode=True)


class DashboardStore:
    """Keep dashboards by id with their versions in the state database."""

    def __init__(
        self,
        engine: Engine | None,
        shipped: dict[str, Dashboard] | None = None,
        files: str | Path | None = None,
    ):
        self.shipped = dict(shipped if shipped is not None else load_dashboards(ConfigDir().dashboards))
        self.engine = engine if engine is not None else memory_database()
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._saved: dict[str, tuple[int, Dashboard]] = {}  # id: (version, dashboard) as last read
        self._all: dict[str, Dashboard] = dict(self.shipped)  # replaced, never changed in place
        self._read_at = 0.0
        if files is not None:
            self._import_files(Path(files))
        self.refresh()

    @property
    def dashboards(self) -> dict[str, Dashboard]:
        """Every dashboard by id, shipped ones first (saves of other replicas within a second)."""
        if time.monotonic() - self._read_at > FRESH_FOR:
            self.refresh()
        return self._all

    def refresh(self) -> None:
        """Read what changed in the database since the last look."""
        with self._lock:
            with self.engine.connect() as db:
                versions = dict(db.execute(select(dashboards.c.id, dashboards.c.version)).all())
                changed = [i for i, v in versions.items() if self._saved.get(i, (None,))[0] != v]
                if changed:
                    rows = db.execute(
                        select(dashboards.c.id, dashboards.c.version, dashboards.c.document).where(
                            dashboards.c.id.in_(changed)
                        )
                    ).all()
                else:
                    rows = []
            saved = {i: kept for i, kept in self._saved.items() if i in versions}
            for dashboard_id, version, text in rows:
                try:
                    saved[dashboard_id] = (
                        version,
                        parse_dashboard(yaml.safe_load(text), f"dashboard {dashboard_id}"),
                    )
                except (ValueError, yaml.YAMLError) as exc:  # one damaged row: that dashboard is missing
                    self.problems.append(str(exc))
            self._saved = saved
            merged = dict(self.shipped)
            for dashboard_id, (_, dashboard) in sorted(saved.items()):
                merged[dashboard_id] = dashboard
            self._all = merged
            self._read_at = time.monotonic()

    def get(self, dashboard_id: str) -> Dashboard | None:
        """A dashboard by id; one not known here is looked for in the database (saved on another replica
        within the last second)."""
        found = self.dashboards.get(dashboard_id)
        if found is None:
            self.refresh()
            found = self._all.get(dashboard_id)
        return found

    def is_shipped(self, dashboard_id: str) -> bool:
        return dashboard_id in self.shipped

    def version(self, dashboard_id: str) -> int:
        """The current version of a dashboard: 0 shipped or never saved, then one more per save."""
        with self.engine.connect() as db:
            found = db.execute(select(dashboards.c.version).where(dashboards.c.id == dashboard_id)).scalar()
        return found or 0

    def versions(self, dashboard_id: str) -> list[dict]:
        """Every kept version, newest first: version, saved (Unix seconds), by, title, panels, action."""
        self._known(dashboard_id)
        columns = [dashboard_versions.c[n] for n in ("version", "saved", "by", "title", "panels", "action")]
        with self.engine.connect() as db:
            rows = (
                db.execute(
                    select(*columns)
                    .where(dashboard_versions.c.dashboard_id == dashboard_id)
                    .order_by(dashboard_versions.c.version.desc())
                )
                .mappings()
                .all()
            )
        log = [dict(r) for r in rows]
        if dashboard_id in self.shipped:
            d = self.shipped[dashboard_id]
            log.append(
                {
                    "version": 0,
                    "saved": None,
                    "by": "Pulseboard",
                    "title": d.title,
                    "panels": len(d.panels),
                    "action": "shipped",
                }
            )
        return log

    def at_version(self, dashboard_id: str, version: int) -> Dashboard:
        """A dashboard as it was at a version."""
        self._known(dashboard_id)
        if version == 0 and dashboard_id in self.shipped:
            return self.shipped[dashboard_id]
        with self.engine.connect() as db:
            text = db.execute(
                select(dashboard_versions.c.document).where(
                    dashboard_versions.c.dashboard_id == dashboard_id, dashboard_versions.c.version == version
                )
            ).scalar()
        if text is None:
            kept = ", ".join(str(v["version"]) for v in self.versions(dashboard_id)) or "none"
            raise DashboardError(f"{dashboard_id!r} has no version {version}; kept: {kept}", 404, "version")
        return parse_dashboard(yaml.safe_load(text), f"dashboard {dashboard_id} version {version}")

    def create(self, data: object, by: str = "api", action: str = "created") -> Dashboard:
        """Validate and store a new dashboard; 409 when the id is taken (on any replica)."""
        dashboard = parse_document(data)
        taken = DashboardError(
            f"a dashboard {dashboard.id!r} exists; PUT to change it, or choose another id", 409, "id"
        )
        if dashboard.id in self.dashboards:
            raise taken
        try:
            text = document_text(dashboard)
            with self.engine.begin() as db:
                db.execute(insert(dashboards).values(id=dashboard.id, version=1, document=text))
                self._keep_version(db, dashboard, text, 1, by, action)
        except IntegrityError:
            raise taken from None
        self.refresh()
        return dashboard

    def update(
        self,
        dashboard_id: str,
        data: object,
        by: str = "api",
        base: int | None = None,
        may_change_shipped: bool = False,
        action: str = "saved",
    ) -> Dashboard:
        """Save a new version of a dashboard.

        ``base`` is the version the change was made from: if another save came since, 409.
        """
        dashboard = parse_document(data) if not isinstance(data, Dashboard) else data
        if dashboard.id != dashboard_id:
            raise DashboardError(
                f"id {dashboard.id!r} does not match the path's {dashboard_id!r}", field="id"
            )
        self._changeable(dashboard_id, may_change_shipped)
        text = document_text(dashboard)
        for _ in range(20):  # without a base, a save that lost a race is tried on the newer version
            current = self.version(dashboard_id)
            if base is not None and base != current:
                raise self._conflict(dashboard_id, current, base)
            try:
                with self.engine.begin() as db:
                    if current == 0:  # a shipped dashboard's first save
                        db.execute(insert(dashboards).values(id=dashboard_id, version=1, document=text))
                    else:
                        done = db.execute(
                            update(dashboards)
                            .where(dashboards.c.id == dashboard_id, dashboards.c.version == current)
                            .values(version=current + 1, document=text)
                        ).rowcount
                        if done != 1:
                            raise _Lost()
                    self._keep_version(db, dashboard, text, current + 1, by, action)
            except (_Lost, IntegrityError):
                if base is not None:
                    raise self._conflict(dashboard_id, self.version(dashboard_id), base) from None
                continue
            self.refresh()
            return dashboard
        raise DashboardError(
            f"{dashboard_id!r} is being saved by others at this moment; try again", 409, "id"
        )

    def restore(
        self,
        dashboard_id: str,
        version: int,
        by: str = "api",
        base: int | None = None,
        may_change_shipped: bool = False,
    ) -> Dashboard:
        """Save an earlier version again, as the newest."""
        old = self.at_version(dashboard_id, version)
        return self.update(dashboard_id, old, by, base, may_change_shipped, action=f"restored {version}")

    def delete(self, dashboard_id: str, may_change_shipped: bool = False) -> None:
        """Remove a saved dashboard and its versions; a shipped one goes back to as it shipped."""
        self._changeable(dashboard_id, may_change_shipped)
        if dashboard_id in self.shipped and not self.version(dashboard_id):
            raise DashboardError(
                f"{dashboard_id!r} ships with Pulseboard and cannot be deleted; "
                "an admin's saved versions of it can be (it then goes back to as it shipped)",
                403,
                "id",
            )
        with self.engine.begin() as db:
            db.execute(delete(dashboard_versions).where(dashboard_versions.c.dashboard_id == dashboard_id))
            db.execute(delete(dashboards).where(dashboards.c.id == dashboard_id))
        self.refresh()

    def free_id(self, title: str) -> str:
        """An id made from a title (or an id) that no dashboard has."""
        return id_for(title, self.dashboards, default="dashboard")

    def _conflict(self, dashboard_id: str, current: int, base: int) -> DashboardError:
        with self.engine.connect() as db:
            by = db.execute(
                select(dashboard_versions.c.by).where(
                    dashboard_versions.c.dashboard_id == dashboard_id, dashboard_versions.c.version == current
                )
            ).scalar()
        return DashboardError(
            f"{dashboard_id!r} was changed by {by or 'someone'} since you opened it "
            f"(version {current}, yours is {base}); reload it to see their change, or save "
            "yours under another id",
            409,
            "version",
            version=current,
            by=by,
        )

    def _known(self, dashboard_id: str) -> None:
        if dashboard_id not in self.dashboards:
            known = ", ".join(self.dashboards)
            raise DashboardError(f"no dashboard {dashboard_id!r}; known: {known}", 404, "id")

    def _changeable(self, dashboard_id: str, may_change_shipped: bool) -> None:
        self._known(dashboard_id)
        if dashboard_id in self.shipped and not may_change_shipped:
            raise DashboardError(
                f"{dashboard_id!r} ships with Pulseboard and only an admin may change it; "
                "clone it to make your own",
                403,
                "id",
            )

    def _keep_version(
        self,
        db,
        dashboard: Dashboard,
        text: str,
        version: int,
        by: str,
        action: str,
        saved: float | None = None,
    ) -> None:
        """Keep a version (dropping those older than the last KEPT_VERSIONS)."""
        db.execute(
            insert(dashboard_versions).values(
                dashboard_id=dashboard.id,
                version=version,
                document=text,
                saved=round(time.time() if saved is None else saved, 3),
                by=by,
                title=dashboard.title,
                panels=len(dashboard.panels),
                action=action,
            )
        )
        db.execute(
            delete(dashboard_versions).where(
                dashboard_versions.c.dashboard_id == dashboard.id,
                dashboard_versions.c.version <= version - KEPT_VERSIONS,
            )
        )

    def _import_files(self, directory: Path) -> None:
        """Bring the dashboards saved as files by earlier versions into the database, once."""
        if not directory.is_dir():
            return
        with self.engine.begin() as db:
            if not import_once(db, IMPORTED_FILES, directory):
                return
            for path in sorted(directory.glob("*.yaml")):
                try:
                    dashboard = load_dashboard(path)
                except ValueError as exc:  # one damaged file: that dashboard is missing, not the server
                    self.problems.append(str(exc))
                    continue
                history = directory / ".versions" / dashboard.id
                log = _file_log(history)
                if dashboard.id in self.shipped and not log:
                    continue  # a file beside a shipped id that no save wrote: the shipped one stands
                if db.execute(select(func.count()).where(dashboards.c.id == dashboard.id)).scalar():
                    continue
                version = log[-1]["version"] if log else 1
                text = document_text(dashboard)
                db.execute(insert(dashboards).values(id=dashboard.id, version=version, document=text))
                kept = 0
                for entry in log:
                    path_v = history / f"{entry['version']}.yaml"
                    try:
                        data, lines = read_yaml(path_v)
                        old = parse_dashboard(data, str(path_v), lines)
                    except (OSError, ValueError):
                        continue
                    by, action = str(entry.get("by") or "files"), str(entry.get("action") or "saved")
                    saved = float(entry.get("saved") or time.time())
                    self._keep_version(db, old, document_text(old), entry["version"], by, action, saved)
                    kept += 1
                if not kept:
                    self._keep_version(db, dashboard, text, version, "files", "imported from its file")


class _Lost(Exception):
    """Another save came between reading the version and writing the next."""


def _file_log(history: Path) -> list[dict]:
    try:
        lines = (history / "log.jsonl").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("version"), int):
            out.append(entry)
    return out
