"""Settings and dashboard files: valid ones load, bad ones stop start-up naming file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collectors.registry import COLLECTORS
from dashboard_app.access.secrets import load_secrets
from dashboard_app.alerts.rules import load_recording_rules, load_rule_files
from dashboard_app.check_config import check
from dashboard_app.config_dir import ConfigDir, find_config
from dashboard_app.settings import CollectorsSettings, load_settings
from layouts.dashboards import load_dashboard, load_dashboards
from layouts.schema import CHART_TYPES
from layouts.validation import ConfigError, parse_duration
from tests.servers import ROOT


@pytest.mark.parametrize(
    "env, raw, tiers, connections",
    [
        ("development", 900, [(60, 86400)], 10),
        ("staging", 1800, [(60, 3 * 86400)], 50),
        ("production", 3600, [(60, 7 * 86400), (3600, 30 * 86400)], 100),
    ],
)
def test_shipped_environments_set_their_retention(env, raw, tiers, connections):
    settings = load_settings(env, environ={})
    assert settings.store.raw.retention == raw
    assert [(t.step, t.retention) for t in settings.store.rollups] == tiers
    assert settings.server.max_connections == connections
    assert settings.dashboards.refresh == 5


def test_slow_categories_collect_less_often_in_development():
    intervals = [
        load_settings(e, environ={}).collectors.disk_usage.interval
        for e in ("development", "staging", "production")
    ]
    assert intervals == [60, 30, 15]


def test_environment_variables_override_single_keys():
    settings = load_settings(
        "development",
        environ={"PULSEBOARD_COLLECTORS__SYSTEM__INTERVAL": "1s", "PULSEBOARD_DASHBOARDS__REFRESH": "1"},
    )
    assert settings.collectors.system.interval == 1
    assert settings.dashboards.refresh == 1
    assert settings.store.raw.retention == 900


def test_environment_values_are_typed_by_their_setting_never_parsed_as_yaml():
    prometheus = {"PULSEBOARD_PROMETHEUS__URL": "http://127.0.0.1:9090"}
    settings = load_settings(
        "development",
        environ={
            **prometheus,
            "PULSEBOARD_PROMETHEUS__USERNAME": "0123",
            "PULSEBOARD_PROMETHEUS__PASSWORD": "s3cret #1",
            "PULSEBOARD_SERVER__MAX_CONNECTIONS": "0123",
            "PULSEBOARD_DEMO": "off",
        },
    )
    assert settings.prometheus.username == "0123"  # a text setting keeps its leading zero
    assert settings.prometheus.password == "s3cret #1"  # and what follows a '#'
    assert settings.server.max_connections == 123  # a number is decimal, not octal
    assert settings.demo is False


def test_a_setting_or_a_secret_can_be_read_from_a_file(tmp_path):
    (tmp_path / "password").write_text("s3cret #1 with spaces\n")
    (tmp_path / "key").write_text("k" * 40 + "\n")
    environ = {
        "PULSEBOARD_PROMETHEUS__URL": "http://127.0.0.1:9090",
        "PULSEBOARD_PROMETHEUS__USERNAME": "reader",
        "PULSEBOARD_PROMETHEUS__PASSWORD_FILE": str(tmp_path / "password"),
        "PULSEBOARD_ADMIN_PASSWORD_FILE": str(tmp_path / "password"),
        "PULSEBOARD_SECRET_KEY_FILE": str(tmp_path / "key"),
    }
    assert load_settings("development", environ=environ).prometheus.password == "s3cret #1 with spaces"
    secrets = load_secrets(environ)
    assert (secrets.admin_password, secrets.secret_key) == ("s3cret #1 with spaces", "k" * 40)


def test_a_secret_file_that_cannot_be_read_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="PULSEBOARD_ADMIN_PASSWORD_FILE: cannot read .*missing"):
        load_secrets({"PULSEBOARD_ADMIN_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="PULSEBOARD_DEMO_FILE: PULSEBOARD_DEMO is set too"):
        load_settings("development", environ={"PULSEBOARD_DEMO": "1", "PULSEBOARD_DEMO_FILE": "/dev/null"})


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("PULSEBOARD_SERVER__MAX_CONNECTIONS", "ten", "PULSEBOARD_SERVER__MAX_CONNECTIONS: .*integer"),
        (
            "PULSEBOARD_DASHBOARDS__REFRESH",
            "7",
            "PULSEBOARD_DASHBOARDS__REFRESH: must be one of 0, 1, 5 or 30",
        ),
        ("PULSEBOARD_SCRAPE", "[{", "PULSEBOARD_SCRAPE: not valid JSON"),
        ("PULSEBOARD_STORE__RAW__RETENTION", "forever", "PULSEBOARD_STORE__RAW__RETENTION: 'forever' is not"),
    ],
)
def test_a_bad_environment_value_names_its_variable(var, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings("development", environ={var: value})


def test_a_list_setting_is_given_as_json():
    targets = '[{"job": "app", "url": "http://127.0.0.1:9/metrics"}]'
    settings = load_settings("development", environ={"PULSEBOARD_SCRAPE": targets})
    assert [(t.job, t.url) for t in settings.scrape] == [("app", "http://127.0.0.1:9/metrics")]


def test_a_misspelt_override_names_the_variable():
    with pytest.raises(
        ConfigError, match="PULSEBOARD_COLLECTORS__SYSTEM__INTERVL: unknown setting collectors.system.intervl"
    ):
        load_settings("development", environ={"PULSEBOARD_COLLECTORS__SYSTEM__INTERVL": "1"})


def test_unknown_environment_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="development, staging, production"):
        load_settings("prod", environ={})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_bad_settings_value_names_file_line_and_field(tmp_path):
    write(tmp_path, "development.yaml", "environment: development\ndashboards:\n  refresh: 7\n")
    with pytest.raises(ConfigError) as err:
        load_settings("development", environ={}, config=ConfigDir(tmp_path))
    message = str(err.value)
    assert "development.yaml:3: dashboards.refresh" in message
    assert "0, 1, 5 or 30" in message


def test_a_bad_duration_says_how_to_write_one(tmp_path):
    write(tmp_path, "development.yaml", "store:\n  raw:\n    retention: forever\n")
    with pytest.raises(
        ConfigError, match=r"development.yaml:3: store.raw.retention: 'forever' is not a duration"
    ):
        load_settings("development", environ={}, config=ConfigDir(tmp_path))


def test_broken_yaml_names_the_line(tmp_path):
    write(tmp_path, "development.yaml", "server:\n  max_connections: [1\n")
    with pytest.raises(ConfigError, match=r"development.yaml:\d+: not valid YAML"):
        load_settings("development", environ={}, config=ConfigDir(tmp_path))


@pytest.mark.parametrize(
    "text, seconds", [("500ms", 0.5), ("15s", 15), ("5m", 300), ("1h", 3600), ("7d", 604800), (30, 30)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_every_collector_has_a_config_section_and_every_section_a_collector():
    # "self" reads Pulseboard's own instruments, so the runtime builds it rather than the registry.
    assert set(CollectorsSettings.model_fields) == set(COLLECTORS) | {"self"}


def test_shipped_dashboards_load_in_menu_order():
    dashboards = load_dashboards(ConfigDir().dashboards)
    assert list(dashboards) == ["executive", "operations", "development"]
    used = {p.type for d in dashboards.values() for p in d.panels}
    assert used == set(CHART_TYPES)  # the shipped dashboards show every chart type


PANEL = """id: broken
title: Broken
access: operations
panels:
  - id: fine
    title: Fine
    type: line
    queries: [{expr: up}]
  - id: cpu
    title: CPU
    type: {chart}
    queries: [{expr: '{expr}'}]
    grid: {grid}
"""


@pytest.mark.parametrize(
    "chart, expr, grid, expected",
    [
        (
            "sparkle",
            "up",
            "{x: 0, w: 6}",
            ["broken.yaml:11", "panel 'cpu' field type", "'line', 'area', 'bar'"],
        ),
        (
            "line",
            'up{job="a"',
            "{x: 0, w: 6}",
            ["broken.yaml:12", "panel 'cpu' field queries.0.expr", "closing"],
        ),
        ("line", "up", "{x: 8, w: 6}", ["broken.yaml:13", "panel 'cpu' field grid", "a row has 12 columns"]),
        (
            "line",
            "up",
            "{x: 0, w: 6, colour: red}",
            ["broken.yaml:13", "panel 'cpu' field grid.colour", "unknown key"],
        ),
    ],
)
def test_a_bad_dashboard_names_file_panel_field_and_allowed_values(tmp_path, chart, expr, grid, expected):
    text = PANEL.replace("{chart}", chart).replace("{expr}", expr).replace("{grid}", grid)
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_dashboard(path)
    for part in expected:
        assert part in str(err.value)


def test_duplicate_panel_ids_are_refused(tmp_path):
    text = (
        PANEL.replace("{chart}", "line")
        .replace("{expr}", "up")
        .replace("{grid}", "{}")
        .replace("id: cpu", "id: fine")
    )
    with pytest.raises(ConfigError, match="panel id 'fine' is used twice"):
        load_dashboard(write(tmp_path, "broken.yaml", text))


def test_dashboard_id_must_match_its_file_name(tmp_path):
    text = PANEL.replace("{chart}", "line").replace("{expr}", "up").replace("{grid}", "{}")
    with pytest.raises(ConfigError, match="must match the file name 'other'"):
        load_dashboard(write(tmp_path, "other.yaml", text))


def test_the_configuration_is_found_the_usual_way(tmp_path, monkeypatch):
    import dashboard_app.config_dir as where

    mine, system = tmp_path / "mine", tmp_path / "etc-pulseboard"
    mine.mkdir()
    monkeypatch.setattr(where, "SYSTEM", system)
    assert find_config(None, {}).root is None  # nothing else: the shipped defaults
    system.mkdir()
    assert find_config(None, {}).root == system  # /etc/pulseboard when it exists
    assert find_config(None, {"PULSEBOARD_CONFIG": str(mine)}).root == mine  # then the variable
    assert find_config(str(mine), {"PULSEBOARD_CONFIG": str(system)}).root == mine  # --config first
    with pytest.raises(ConfigError, match="PULSEBOARD_CONFIG: no such configuration directory"):
        find_config(None, {"PULSEBOARD_CONFIG": str(tmp_path / "gone")})


def test_a_configuration_directory_overrides_only_what_it_holds(tmp_path):
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "mine.yaml").write_text(
        "rules:\n  - id: queue\n    name: Queue\n    query: shop_queue_depth\n    condition: '>'\n"
        "    threshold: 10\n    no_data: keep\n"
    )
    config = ConfigDir(tmp_path)
    assert config.alerts == tmp_path / "alerts" and config.dashboards == ConfigDir().dashboards
    assert config.settings_file("production") == ConfigDir().settings_file("production")
    assert load_rule_files(config.alerts)["queue"].no_data == "keep"
    assert set(load_dashboards(config.dashboards)) == {"executive", "operations", "development"}


def test_a_key_of_a_mapping_setting_is_set_from_the_environment_and_a_key_inside_a_plain_one_is_refused():
    settings = load_settings("development", environ={"PULSEBOARD_AUTH__METRIC_LEVELS__NODE_": "operations"})
    assert settings.auth.metric_levels["node_"] == "operations"
    with pytest.raises(ConfigError, match="PULSEBOARD_DEMO__X: unknown setting demo.x"):
        load_settings("development", environ={"PULSEBOARD_DEMO__X": "1"})


def test_check_config_finds_a_rule_naming_a_missing_target_and_only_the_real_panel_errors(tmp_path):
    (tmp_path / "alerts").mkdir()
    (tmp_path / "dashboards").mkdir()
    rules = tmp_path / "alerts" / "mine.yaml"
    rules.write_text(
        "rules:\n  - id: queue\n    name: Queue\n    query: shop_queue_depth\n    condition: '>'\n"
        "    threshold: 10\n    notify: [oncall]\n"
    )
    board = tmp_path / "dashboards" / "shop.yaml"
    board.write_text("id: shop\ntitle: Shop\naccess: executive\npanels:\n  - {id: a, type: pie3d}\n")
    report = check([tmp_path], "development", ConfigDir(tmp_path), {})
    assert f"{rules}:7: rule 'queue': notify: no target named 'oncall' in alerts.notify" in report.errors[-1]
    assert [e.split(": ", 1)[1] for e in report.errors if e.startswith(str(board))] == [
        "panel 'a' field title: Field required",
        "panel 'a' field type: must be one of 'line', 'area', 'bar', 'pie', 'gauge', 'stat', 'table' or "
        "'heatmap'",
        "panel 'a' field queries: Field required",
    ]  # and not that the dashboard has no panels
    named = {"PULSEBOARD_ALERTS__NOTIFY": '[{"name": "oncall", "url": "json://127.0.0.1/"}]'}
    in_force = check([], "development", ConfigDir(tmp_path), named)  # the environment names the target
    assert in_force.errors and not [e for e in in_force.errors if "notify" in e]


def test_an_alias_bomb_is_refused_by_check_config_and_start_up_without_expanding_it(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    write(tmp_path, "development.yaml", "\n".join(lines) + "\n")  # 9^9 values in 700 bytes
    with pytest.raises(ConfigError, match=r"development.yaml: its aliases expand to more than 100,000"):
        load_settings("development", environ={}, config=ConfigDir(tmp_path))
    done = subprocess.run(
        [sys.executable, "app.py", "check-config", str(tmp_path / "development.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "aliases expand to more than" in done.stderr
    write(tmp_path, "development.yaml", "collectors:\n  system: &c {interval: 7}\n  disk_usage: *c\n")
    loaded = load_settings("development", environ={}, config=ConfigDir(tmp_path))  # a plain alias is fine
    assert loaded.collectors.disk_usage.interval == 7


def test_check_config_reads_a_prometheus_rule_file_and_names_the_line_of_each_mistake(tmp_path):
    (tmp_path / "alerts").mkdir()
    rules = tmp_path / "alerts" / "prometheus.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: Broken\n        expr: rate(x[5m]\n"
        "      - record: 'not a name'\n        expr: up\n"
        "      - alert: Down\n        expr: up == 0\n        for: 1m\n"
        "      - record: job:up:sum\n        expr: sum by (job) (up)\n"
    )
    report = check([tmp_path], "development", ConfigDir(tmp_path), {})
    mine = [e for e in report.errors if e.startswith(str(rules))]
    assert mine == [
        f"{rules}:5: groups.0.rules.0 (Broken): expr: unclosed left parenthesis",
        f"{rules}:6: groups.0.rules.1 (not a name): record: a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*",
    ]
    good = tmp_path / "good"
    (good / "alerts").mkdir(parents=True)
    (good / "alerts" / "rules.yml").write_text(
        rules.read_text().split("      - alert: Broken")[0]
        + "".join(rules.read_text().split("expr: up\n", 1)[1:])
    )
    assert load_rule_files(good / "alerts")["down"].expr == "up == 0"
    assert [r.record for r in load_recording_rules(good / "alerts")] == ["job:up:sum"]
