"""One running Pulseboard: store, archive, collectors and the source pages read from."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from collectors.demo import DemoWorkload
from collectors.instruments import Instruments
from collectors.producers import declare_host_metrics, schedule_producers
from collectors.scheduler import Scheduler
from collectors.scrape import ScrapeCollector
from dashboard_app import allocator
from dashboard_app.access.audit import AuditLog
from dashboard_app.access.keys import Keys
from dashboard_app.access.levels import MetricLevels
from dashboard_app.access.scoped import Sources
from dashboard_app.access.secrets import Secrets, load_secrets
from dashboard_app.access.users import Users
from dashboard_app.alerts.engine import AlertEngine
from dashboard_app.alerts.notify import Notifier
from dashboard_app.alerts.rules import RuleBook, load_recording_rules, load_rule_files, unknown_targets
from dashboard_app.alerts.silences import Silences
from dashboard_app.api.frame import QueryGate
from dashboard_app.config_dir import ConfigDir
from dashboard_app.dashboard_store import DashboardStore
from dashboard_app.live.connections import ConnectionPool
from dashboard_app.pages.answers import SharedAnswers
from dashboard_app.pages.views import AHEAD_EVERY, PanelViews
from dashboard_app.settings import Settings
from dashboard_app.sources.prometheus import PrometheusSource, session
from dashboard_app.sources.source import EmbeddedSource, Source
from dashboard_app.state.database import database_url, open_database
from dashboard_app.state.definitions import SavedDefinitions
from dashboard_app.state.totals import RunningTotals
from ingest.catalog import CATALOG
from ingest.custom import CustomMetrics
from ingest.forward import Forwarder
from ingest.incoming import ProtocolIngest
from layouts.dashboards import load_dashboards
from layouts.schema import Dashboard
from layouts.validation import ConfigError
from tsdb.archive import Archive
from tsdb.metrics import STORED
from tsdb.persistence import convert_previous
from tsdb.store import build_store

DEMO_BACKFILL = 3600.0
DEMO_TICK = 5.0  # seconds between two runs of the demo shop

log = logging.getLogger(__name__)


def collection_interval(settings: Settings) -> float:
    """How often the series a page rates get a sample: the slowest of the host, Pulseboard's own, the demo's
    and the scrapes' collections (``$__rate_interval`` spans four of them, so a rate always has two)."""
    collectors = settings.collectors
    found = [c.interval for c in (collectors.system, collectors.self) if c.enabled]
    found += [DEMO_TICK] if settings.demo else []
    found += [target.interval for target in settings.scrape]
    return float(max(found, default=collectors.system.interval))


class Runtime:
    """Wire the store, its archive, the collectors and the dashboards for one process."""

    def __init__(
        self,
        settings: Settings,
        data_dir: str | Path,
        clock: Callable[[], float] = time.time,
        ps: Any = None,
        dashboards: dict[str, Dashboard] | None = None,
        secrets: Secrets | None = None,
        config: ConfigDir | None = None,
    ):
        self.settings = settings
        self.config = config = config or ConfigDir()
        self.clock = clock
        self.started_at = clock()
        data_dir = Path(data_dir)
        auth = settings.auth
        # Staging and production refuse to start without secrets, before anything else is touched.
        self.secrets = (secrets or load_secrets()) if auth.enabled else None
        # Users, keys, dashboards (and, as they move there, the other state replicas share): one database.
        data_dir.mkdir(parents=True, exist_ok=True)
        self.database = open_database(database_url(settings.database.url, data_dir))
        # Without logins (development) there are no users to keep: a private, passing table.
        self.users = Users(self.database, data_dir / "users.json") if auth.enabled else Users(None)
        if self.secrets is not None:
            self.users.set("admin", self.secrets.admin_password, "admin")
        self.keys = Keys(self.database, clock, data_dir / "api_keys.json")
        self.audit = AuditLog(self.database, clock, files=data_dir / "audit.log")
        shipped = dashboards if dashboards is not None else load_dashboards(config.dashboards)
        self.dashboard_store = DashboardStore(self.database, shipped, files=data_dir / "dashboards")
        self.prometheus = settings.source == "prometheus"
        # Reading from Prometheus, a replica keeps no metric history: the store holds only its own
        # instruments (for /metrics), in memory, and nothing is written to or read from disk for it.
        self.archive: Archive | None = None
        if not self.prometheus:
            self.archive = Archive(data_dir / "tsdb", settings.store.cache_size)
        self.store = build_store(settings, clock, self.archive)
        declare_host_metrics(self.store)  # their units, types and levels, wherever their data comes from
        if self.prometheus:
            self.source: Source = PrometheusSource(settings.prometheus, self.store.specs, clock)
        else:
            converted = convert_previous(data_dir, self.store)
            if converted:
                self.archive.problems.append(converted)
            self.source = EmbeddedSource(
                self.store,
                scrape_interval=collection_interval(settings),
                max_samples=settings.query.max_samples,
            )
        self.api_source: Source = self.source
        self.levels = MetricLevels(self.store.specs, auth.metric_levels)
        # Request code reads only through these, bound to its caller: see access.scoped.
        self.sources = Sources(
            self.source,
            self.api_source,
            EmbeddedSource(self.store, scrape_interval=collection_interval(settings)),
            self.levels,
        )
        self.query_gate = QueryGate(settings.query.max_concurrent, settings.query.timeout)
        # Reading from Prometheus, pushes are checked here and forwarded to the server by remote write.
        self.forward: Forwarder | None = None
        if self.prometheus:
            server = settings.prometheus
            totals = RunningTotals(self.database)
            self.forward = Forwarder(server.write_url, session(server), server.timeout, totals)
        self.metrics = CustomMetrics(
            self.store,
            SavedDefinitions(self.database, data_dir / "custom_metrics.json"),
            clock,
            settings.ingest.series_cap,
            settings.ingest.sample_cap,
            self.forward,
        )
        for definition in CATALOG:
            self.metrics.register(definition, save=False)
        # Samples other protocols send (InfluxDB line protocol, ...): the same caps as the JSON push.
        self.protocol_ingest = ProtocolIngest(
            self.store, clock, settings.ingest.sample_cap, settings.ingest.series_cap
        )
        self.instruments = Instruments(clock)
        self.connections = ConnectionPool(
            settings.server.max_connections, clock, per_owner=settings.server.max_connections_per_user
        )
        self.scheduler = Scheduler(clock)
        schedule_producers(
            self.scheduler,
            self.store,
            settings.collectors,
            self.instruments,
            host=not self.prometheus,  # reading from Prometheus, hosts run agents that it scrapes
            ps=ps,
            clock=clock,
            connections=lambda: len(self.connections),
        )
        self.targets: list[ScrapeCollector] = []
        for target in settings.scrape:
            scraper = ScrapeCollector(
                target.url,
                target.job,
                target.instance,
                target.labels,
                target.timeout,
                target.max_bytes,
                clock,
                self._declare_scraped,
                target.sample_limit,
                self.store.admit,
                target.access,
            )
            self.targets.append(scraper)
            self.scheduler.collect(scraper, self.store, target.interval)
        self.demo = DemoWorkload(self.metrics, clock) if settings.demo and not self.prometheus else None
        if self.demo is not None:
            self.scheduler.every("demo", DEMO_TICK, self.demo.run)
        alerts = settings.alerts
        self.rules = RuleBook(
            self.database,
            load_rule_files(config.alerts),
            load_recording_rules(config.alerts),
            file=data_dir / "alert_rules.json",
        )
        self.notifier = Notifier(
            alerts.alertmanager,
            alerts.webhooks,
            alerts.external_url,
            alerts.resend_interval,
            tuple((t.name, t.url) for t in alerts.targets()),
            clock=clock,
            count=self.instruments.count,
            database=self.database,
            may_deliver=lambda: self.alerts.leading,
        )
        for rule in self.rules.shipped.values():
            unknown = unknown_targets(rule, self.notifier.people)
            if unknown:
                raise ConfigError(f"{config.alerts}: rule {rule.id!r}: {unknown[0]}")
        self.silences = Silences(self.database, clock, data_dir / "silences.json")
        # Alert state and the notifications to deliver are in the database; of several replicas, the
        # one holding the lease evaluates and notifies, and another takes over within an interval.
        self.alerts = AlertEngine(
            self.rules,
            self.api_source,
            clock,
            self.notifier,
            self.silences,
            record=None if self.prometheus else self.store.append,
            database=self.database,
            interval=alerts.interval,
        )
        self.scheduler.every("alerts", alerts.interval, self.alerts.evaluate)
        self.scheduler.every("alerts-lease", alerts.interval / 4, self.alerts.contend)
        if self.notifier.enabled:
            self.scheduler.every("alerts-resend", alerts.resend_interval, self._resend)
        # Computed answers, shared by every page viewer and live connection.
        self.answers = SharedAnswers(settings.dashboards.cache_size)
        self.panel_views = PanelViews(
            self.answers,
            settings.dashboards.points,
            self.alerts.episodes,
            lambda: self.alerts.changes,
            self.scheduler.trouble,
        )
        self.scheduler.every("answers", AHEAD_EVERY, lambda: self.panel_views.ahead(self.store.changed))
        self.scheduler.every("flush", settings.store.flush_interval, self._flush)
        self.scheduler.every("memory", allocator.TRIM_EVERY, allocator.hand_back)
        for problem in self.problems:
            log.error("data directory: %s", problem)
        self.started = False

    def _resend(self) -> None:
        """Tell Alertmanager again about firing alerts no silence mutes (the replica that notifies)."""
        if self.alerts.leading:
            self.notifier.resend(
                [a for a in self.alerts.active() if a["state"] == "firing" and not a["silenced_by"]]
            )

    def _flush(self) -> None:
        try:
            self.store.flush()
        except (OSError, sqlite3.Error):
            self.instruments.count("pulseboard_storage_write_errors_total", {})
            raise  # the scheduler records the failure; the samples stay in memory for the next flush

    @property
    def problems(self) -> list[str]:
        """Files in the data directory that could not be read at start (each one logged)."""
        return (
            self.dashboard_store.problems
            + self.metrics.problems
            + self.metrics.saved.problems
            + self.rules.problems
            + self.silences.problems
            + self.users.problems
            + self.keys.problems
        )

    @property
    def storage_problems(self) -> list[str]:
        """Damaged parts of the stored history that were set aside at start."""
        return self.archive.problems if self.archive is not None else []

    @property
    def dashboards(self) -> dict[str, Dashboard]:
        """Every dashboard served now, shipped ones first."""
        return self.dashboard_store.dashboards

    def _declare_scraped(self, spec) -> None:
        if self.store.specs.owner(spec.name) in (None, STORED):  # new, or only known from the last run
            try:
                self.store.declare(spec, "scrape")
            except ValueError:
                pass  # declared meanwhile by another producer: the first declaration stands

    def start(self) -> None:
        """Start collecting and flushing in the background."""
        if not self.started:
            if self.demo is not None and not self.store.series("pulseboard_business_sessions_total"):
                self.demo.backfill(DEMO_BACKFILL)  # a first start opens on an hour of history
            self.notifier.start()
            self.scheduler.start()
            self.started = True

    def stop(self) -> None:
        """Stop the background jobs and save everything for the next start."""
        self.scheduler.stop()
        try:
            self.alerts.stop()  # another replica evaluates from its next look
        except SQLAlchemyError as exc:  # the database is gone: the lease runs out on its own
            log.warning("could not let the alerting lease go: %s", exc)
        self.notifier.stop()
        self.store.close()
        self.database.dispose()
        self.started = False
