"""Environment settings: <env>.yaml of the configuration directory, validated once, with PULSEBOARD_*
overrides from the environment (typed by the setting they set, through pydantic-settings)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from dashboard_app.config_dir import ConfigDir
from layouts.schema import Refresh
from layouts.validation import ConfigError, Duration, load_model, read_yaml
from query.promql.values import MAX_POINTS
from tsdb.metrics import AccessLevel

ENVIRONMENTS = ("development", "staging", "production")
ENV_PREFIX = "PULSEBOARD_"
LISTEN = ("127.0.0.1", 8050)  # where `pulseboard serve` listens unless told otherwise
PAGE_MAX_POINTS = 2000  # points per series a chart draws by default: more than a screen has pixels
# Short names for the settings people set most from the environment.
ALIASES = {
    "PULSEBOARD_SYSTEM_INTERVAL": "PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL",
    "PULSEBOARD_PROMETHEUS_URL": "PULSEBOARD_PROMETHEUS__URL",
}
FILE_SUFFIX = "_FILE"  # PULSEBOARD_X_FILE=/path: the value of PULSEBOARD_X is that file's content
NAMES_A_FILE = ("PULSEBOARD_SECRETS_FILE",)  # a variable whose value is itself a path, used as one
# Variables that are not settings keys: the command line's and the secrets (kept out of the settings).
NOT_SETTINGS = (
    "PULSEBOARD_ENV",
    "PULSEBOARD_DATA_DIR",
    "PULSEBOARD_CONFIG",
    "PULSEBOARD_SECRET_KEY",
    "PULSEBOARD_ADMIN_PASSWORD",
    "PULSEBOARD_SECRETS_FILE",
    *ALIASES,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    max_connections: int = Field(10, ge=1, description="Live dashboard connections allowed at once.")
    max_connections_per_user: int = Field(
        5, ge=1, description="Live dashboard connections one user or key may hold at once."
    )
    max_frame_bytes: int = Field(
        65536, ge=1024, description="Largest message a live-channel client may send, in bytes."
    )
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of Pulseboard whose X-Forwarded-For/-Proto/-Host headers "
        "are believed (for the client's address and for Secure cookies behind TLS termination).",
    )


class DashboardSettings(_Strict):
    refresh: Refresh = Field(5, description="Default refresh interval in seconds (0 is off).")
    default_range: Duration = Field(900, description="Time range a dashboard opens with.")
    points: int = Field(240, ge=10, le=PAGE_MAX_POINTS, description="Points per series a panel asks for.")
    cache_size: int = Field(
        16 * 2**20,
        ge=2**16,
        description="Bytes of computed panel answers kept for every viewer to share (least used go first).",
    )


class CollectorSettings(_Strict):
    enabled: bool = True
    interval: Duration = Field(5, ge=1, description="Seconds between two collections.")


class CollectorsSettings(_Strict):
    system: CollectorSettings = CollectorSettings(interval=5)
    disk_usage: CollectorSettings = CollectorSettings(interval=60)
    self: CollectorSettings = CollectorSettings(interval=5)


class ScrapeTarget(_Strict):
    """A Prometheus /metrics endpoint Pulseboard reads."""

    url: str = Field(pattern=r"^https?://\S+$", description="http(s) URL of a /metrics endpoint.")
    job: str = Field("scrape", pattern=r"^[a-zA-Z_][a-zA-Z0-9_:.-]*$")
    instance: str | None = Field(None, description="Defaults to the URL's host:port.")
    interval: Duration = Field(15, ge=1)
    timeout: Duration = Field(5, ge=1)
    labels: dict[str, str] = Field(default_factory=dict, description="Added to every scraped series.")
    access: AccessLevel = Field(
        "operations", description="The access level of the target's metrics: who may read them."
    )
    max_bytes: int = Field(10 * 2**20, ge=1024, description="Largest response accepted.")
    sample_limit: int = Field(
        0,
        ge=0,
        description="A scrape with more samples is dropped whole and the target marked down (0: none).",
    )


class IngestSettings(_Strict):
    series_cap: int = Field(10_000, ge=1, description="Most series (label sets) one pushed metric may have.")
    sample_cap: int = Field(10_000, ge=1, description="Most samples one request may carry.")
    max_body: int = Field(2**20, ge=1024, description="Largest request body in bytes.")


class TierSettings(_Strict):
    step: Duration
    retention: Duration

    @model_validator(mode="after")
    def _retention_holds_steps(self):
        if self.retention < self.step:
            raise ValueError("retention must be at least one step")
        return self


class RawSettings(_Strict):
    retention: Duration = 900
    resolution: Duration = Field(1, description="The finest step pages and queries ask for.")


class StoreSettings(_Strict):
    raw: RawSettings = RawSettings()
    rollups: tuple[TierSettings, ...] = (TierSettings(step=60, retention=86400),)
    flush_interval: Duration = Field(
        5,
        ge=1,
        description="Seconds between two writes of collected samples: at most this much is lost in a crash.",
    )
    cache_size: int = Field(
        32 * 2**20, ge=2**20, description="Bytes of decoded history kept in memory for reads."
    )
    max_series: int = Field(
        200_000, ge=1, description="Most series the store holds; samples that would add more are refused."
    )

    @model_validator(mode="after")
    def _rollups_coarsen(self):
        steps = [t.step for t in self.rollups]
        if steps != sorted(set(steps)):
            raise ValueError("rollups must be listed from the finest step to the coarsest, each step once")
        return self


class QuerySettings(_Strict):
    max_points: int = Field(
        PAGE_MAX_POINTS,
        ge=10,
        le=MAX_POINTS,
        description="Most points per series a chart on a page draws (Trends; panels ask for fewer).",
    )
    max_concurrent: int = Field(8, ge=1, description="API queries, exports and analyses running at once.")
    timeout: Duration = Field(10, description="Seconds an API query may run before it is stopped.")
    max_samples: int = Field(
        5_000_000,
        ge=1000,
        description="Samples and points one PromQL query may hold (as Prometheus' --query.max-samples); "
        "past it the query is refused with 422.",
    )


class NotifyTarget(_Strict):
    """An Apprise URL with the name rules pick it by."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    url: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")


class AlertSettings(_Strict):
    interval: Duration = Field(15, ge=1, description="Seconds between two evaluations of every rule.")
    alertmanager: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Alertmanager base URL, e.g. http://127.0.0.1:9093."
    )
    webhooks: tuple[str, ...] = Field(
        (), description="URLs that get a JSON POST per firing or resolved change."
    )
    notify: tuple[NotifyTarget | str, ...] = Field(
        (),
        description="Apprise URLs that get a message per alert that fires or resolves (mailto://, "
        "slack://, msteams://, tgram://, discord://, ntfy://, pover://, matrix://, json://, ...); "
        "a plain URL is named by its scheme, or give {name, url} for a rule's notify: to pick.",
    )
    resend_interval: Duration = Field(60, ge=1, description="Seconds between resends of firing alerts.")
    external_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Pulseboard's URL as its readers reach it, for links in alerts (default: the address "
        "`pulseboard serve` listens on).",
    )

    @model_validator(mode="after")
    def _urls(self):
        for url in self.webhooks:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook {url!r} must be an http(s) URL")
        names = [t.name for t in self.targets()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"notify: two targets are named {twice[0]!r}; name each with {{name: ..., url: ...}}"
            )
        import apprise  # here: only a server with targets needs it

        for target in self.targets():
            if not apprise.Apprise().add(target.url):
                raise ValueError(f"notify: {target.url!r} is not an Apprise URL (see the Apprise wiki)")
        return self

    def targets(self) -> list[NotifyTarget]:
        """The Apprise targets, each with its name (a plain URL's scheme, numbered when repeated)."""
        out, schemes = [], [t.split("://")[0] for t in self.notify if isinstance(t, str)]
        counts: dict[str, int] = {}
        for target in self.notify:
            if isinstance(target, str):
                scheme = target.split("://")[0]
                counts[scheme] = counts.get(scheme, 0) + 1
                name = scheme if schemes.count(scheme) == 1 else f"{scheme}-{counts[scheme]}"
                target = NotifyTarget(name=name, url=target)
            out.append(target)
        return out


class PrometheusSettings(_Strict):
    """The Prometheus-compatible server Pulseboard reads from when ``source: prometheus``."""

    url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Base URL, e.g. http://127.0.0.1:9090 (no /api/v1)."
    )
    username: str | None = Field(None, description="Basic auth user, with password.")
    password: str | None = Field(None, description="Basic auth password (PULSEBOARD_PROMETHEUS__PASSWORD).")
    bearer_token: str | None = Field(None, description="Sent as Authorization: Bearer (not with basic auth).")
    scrape_interval: Duration = Field(
        15, ge=1, description="The server's scrape interval: the finest step asked for; rates span 4 of them."
    )
    timeout: Duration = Field(10, ge=1, description="Seconds one request to the server may take.")
    remote_write: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Where pushes to Pulseboard are forwarded, by remote write (default: url + "
        "/api/v1/write, as Prometheus with --web.enable-remote-write-receiver and VictoriaMetrics take "
        "it; Mimir: /api/v1/push).",
    )

    @property
    def write_url(self) -> str | None:
        return self.remote_write or (f"{self.url.rstrip('/')}/api/v1/write" if self.url else None)

    @model_validator(mode="after")
    def _one_way_to_log_in(self):
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.username is not None and self.bearer_token is not None:
            raise ValueError("set either basic auth (username, password) or bearer_token, not both")
        return self


class DatabaseSettings(_Strict):
    """Where the state that is not metric history is kept: users and sessions, keys, dashboards and their
    versions, rules, silences, alert state and notifications, the audit log. Replicas share one."""

    url: str | None = Field(
        None,
        pattern=r"^(sqlite|postgresql)(\+\w+)?://\S*$",
        description="A SQLAlchemy URL: postgresql://user:password@host:5432/pulseboard for replicas; "
        "default: sqlite in the data directory (state.sqlite).",
    )


class AuthSettings(_Strict):
    enabled: bool = Field(
        False,
        description="Require a login or an API key; needs PULSEBOARD_SECRET_KEY "
        "and PULSEBOARD_ADMIN_PASSWORD.",
    )
    session_idle: Duration = Field(1800, description="A session unused this long ends.")
    session_max: Duration = Field(43200, description="A session ends this long after its login, used or not.")
    login_backoff_after: int = Field(
        5,
        ge=1,
        description="Failed logins of one name from one address before each next try waits twice as long.",
    )
    login_backoff_max: Duration = Field(900, description="The longest such wait.")
    metric_levels: dict[str, AccessLevel] = Field(
        default_factory=dict,
        description="Access levels of metrics by name prefix, for metrics Pulseboard has no declaration "
        "of (those read from Prometheus, say); a metric with no known level is for admins only.",
    )
    rate_limit: int = Field(1200, ge=1, description="Requests per minute per user, key or address.")
    ingest_rate_limit: int = Field(
        60_000,
        ge=1,
        description="Pushes per minute per key (remote write, OTLP, Influx, the JSON push): a Prometheus "
        "catching up sends hundreds a second.",
    )
    login_rate_limit: int = Field(10, ge=1, description="Login attempts per minute per address.")
    anonymous_rate_limit: int = Field(
        120,
        ge=1,
        description="Requests per minute one address may send without valid credentials (none, a wrong "
        "key, an ended session) before it gets 429, checked before any credential is.",
    )


class Settings(_Strict):
    """Everything an environment file may set."""

    environment: Literal["development", "staging", "production"] = "development"
    server: ServerSettings = ServerSettings()
    dashboards: DashboardSettings = DashboardSettings()
    collectors: CollectorsSettings = CollectorsSettings()
    store: StoreSettings = StoreSettings()
    query: QuerySettings = QuerySettings()
    ingest: IngestSettings = IngestSettings()
    demo: bool = Field(False, description="Run the simulated shop and search service.")
    scrape: tuple[ScrapeTarget, ...] = ()
    alerts: AlertSettings = AlertSettings()
    auth: AuthSettings = AuthSettings()
    source: Literal["embedded", "prometheus"] = Field(
        "embedded", description="Where pages, queries, exports, alerts and analyses read metrics."
    )
    prometheus: PrometheusSettings = PrometheusSettings()
    database: DatabaseSettings = DatabaseSettings()

    @model_validator(mode="after")
    def _source_complete(self):
        if self.source == "prometheus":
            if self.prometheus.url is None:
                raise ValueError("source: prometheus needs prometheus.url (or PULSEBOARD_PROMETHEUS_URL)")
            if self.scrape:
                raise ValueError(
                    "with source: prometheus, Prometheus scrapes the targets: "
                    "move the scrape list to prometheus.yml"
                )
        return self


def read_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment with every ``PULSEBOARD_X_FILE`` read into ``PULSEBOARD_X`` (a secret
    kept in a file, as container secrets are); the file's last line break is not part of the value."""
    environ = dict(os.environ if environ is None else environ)
    for var in sorted(environ):
        if not (var.startswith(ENV_PREFIX) and var.endswith(FILE_SUFFIX)) or var in NAMES_A_FILE:
            continue
        target = var[: -len(FILE_SUFFIX)]
        if target in environ:
            raise ConfigError(f"{var}: {target} is set too; set one of them")
        path = Path(environ.pop(var))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{var}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        environ[target] = text[:-1] if text.endswith("\n") else text
        if environ[target].endswith("\r"):
            environ[target] = environ[target][:-1]
    return environ


def _field_path(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    """Return whether a path of keys names a setting, or a key inside one (a mapping's)."""
    node: object = model
    for key in path:
        models = [t for t in (node, *get_args(node)) if isinstance(t, type) and issubclass(t, BaseModel)]
        if models:
            if key not in models[0].model_fields:
                return False
            node = models[0].model_fields[key].annotation
        elif get_origin(node) is dict:
            return True  # a key of a mapping (auth.metric_levels.node_): its value type judges the rest
        else:
            return False  # a key inside a plain value (demo.x)
    return True


class _FromEnvironment(EnvSettingsSource):
    """pydantic-settings' reading of PULSEBOARD_A__B variables, from a given environment."""

    def __init__(self, settings_cls, environ: dict[str, str]):
        self._given = environ
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self):
        return {k.lower(): v for k, v in self._given.items()}


def _overrides(environ: dict[str, str]) -> tuple[dict, dict[tuple, str]]:
    """Return the settings the environment sets (values as given, typed later by each setting, never
    parsed as YAML) and the variable that set each path; an unknown PULSEBOARD_ variable is an error."""
    names = {}
    settings_vars = {}
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var in NOT_SETTINGS:
            continue
        path = tuple(part.lower() for part in var[len(ENV_PREFIX) :].split("__"))
        if not _field_path(Settings, path):
            raise ConfigError(f"{var}: unknown setting {'.'.join(path)}")
        names[path] = var
        settings_vars[var] = raw
    try:
        data = _FromEnvironment(_EnvironmentSettings, settings_vars)()
    except SettingsError as exc:  # a value that should be JSON (a list, a mapping) and is not
        field = re.search(r'field "(\w+)"', str(exc))
        var = next((v for p, v in names.items() if field and p[0] == field.group(1)), "environment")
        raise ConfigError(f"{var}: not valid JSON (a list or a mapping is given as JSON)") from None
    return data, names


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    environment: str = "development", environ: dict[str, str] | None = None, config: ConfigDir | None = None
) -> Settings:
    """Read <environment>.yaml of the configuration directory, apply PULSEBOARD_* overrides and
    validate; raise ConfigError naming the file and line, or the variable, of each problem."""
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"environment {environment!r} is not one of {', '.join(ENVIRONMENTS)}")
    path = (config or ConfigDir()).settings_file(environment)
    data, lines = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the file must hold a mapping of settings")
    environ = read_environment(environ)
    for short, full in ALIASES.items():
        if short in environ:
            environ.setdefault(full, environ[short])
    overrides, names = _overrides(environ)
    data = _merge(data, overrides)
    for key in names:
        lines.pop(key, None)

    def name_of(loc: tuple):
        for n in range(len(loc), 0, -1):
            if loc[:n] in names:
                inside = f" ({'.'.join(str(p) for p in loc)})" if n < len(loc) else ""
                return "environment", names[loc[:n]] + inside  # PULSEBOARD_SCRAPE (scrape.0.url)
        return None

    settings = load_model(Settings, data, str(path), lines, name_of)
    if settings.environment != environment:
        raise ConfigError(
            f"{path}: environment: says {settings.environment!r} in the file for {environment!r}"
        )
    return settings


class _EnvironmentSettings(BaseSettings, Settings):
    """The settings as pydantic-settings reads them from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")


def served_at(settings: Settings, host: str, port: int) -> Settings:
    """The settings of a server listening on host:port: links in alerts lead there unless
    ``alerts.external_url`` says where readers reach it (a listener on every address: by host name)."""
    if settings.alerts.external_url is not None:
        return settings
    host = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    alerts = settings.alerts.model_copy(update={"external_url": f"http://{host}:{port}"})
    return settings.model_copy(update={"alerts": alerts})
