"""Alert rules: the state machine on an injected clock, validation, backtests, engine isolation."""

from __future__ import annotations

import pytest

from dashboard_app.alerts.engine import AlertEngine, RuleState, backtest
from dashboard_app.alerts.rules import AlertRule, RuleBook, load_rule_files
from dashboard_app.config_dir import ConfigDir
from dashboard_app.sources.source import EmbeddedSource
from layouts.validation import ConfigError
from tsdb.metrics import Sample, freeze_labels

CPU = "pulseboard_system_cpu_usage_ratio"


def rule(**change) -> AlertRule:
    base = {
        "id": "high-cpu",
        "name": "High CPU",
        "query": CPU,
        "aggregation": "avg",
        "window": 60,
        "condition": ">",
        "threshold": 0.9,
        "for": 300,
        "severity": "critical",
        "labels": {"team": "ops"},
        "annotations": {"summary": "CPU at {{ value }} on {{ labels.host }}"},
    }
    return AlertRule.model_validate({**base, **change})


HOST = (("host", "a"),)


def test_pending_then_firing_after_for_then_resolved():
    state = RuleState(rule())
    assert state.step([(HOST, 0.95)], 1000) == []
    assert state.alerts[HOST].state == "pending"
    assert state.step([(HOST, 0.96)], 1299) == []  # 299 s: not yet
    [fired] = state.step([(HOST, 0.97)], 1300)
    assert fired.state == "firing" and fired.fired_at == 1300 and fired.active_at == 1000
    assert fired.labels == {"host": "a", "team": "ops", "alertname": "High CPU", "severity": "critical"}
    assert fired.annotations["summary"] == "CPU at 0.97 on a"
    [resolved] = state.step([(HOST, 0.5)], 1315)
    assert resolved.state == "resolved" and resolved.resolved_at == 1315
    assert state.alerts == {}


def test_a_pending_alert_that_clears_leaves_no_event():
    state = RuleState(rule())
    state.step([(HOST, 0.95)], 1000)
    assert state.step([(HOST, 0.2)], 1100) == []
    assert state.alerts == {}
    state.step([(HOST, 0.95)], 1200)
    assert state.alerts[HOST].active_at == 1200  # the for clock starts again


def test_keep_firing_for_holds_through_a_short_dip():
    state = RuleState(rule(**{"for": 0, "keep_firing_for": 60}))
    [fired] = state.step([(HOST, 0.95)], 1000)
    assert fired.state == "firing"
    assert state.step([(HOST, 0.5)], 1030) == []  # 30 s into the dip: still firing
    assert state.alerts[HOST].state == "firing"
    assert state.step([(HOST, 0.95)], 1045) == []  # back up: the same alert
    [resolved] = state.step([(HOST, 0.5)], 1106)  # 61 s after the last true evaluation
    assert resolved.state == "resolved"


def test_a_series_that_disappears_resolves_its_alert_with_no_data_ok():
    state = RuleState(rule(**{"for": 0, "no_data": "ok"}))
    state.step([(HOST, 0.95), ((("host", "b"),), 0.99)], 1000)
    [gone] = state.step([((("host", "b"),), 0.99)], 1015)
    assert gone.labels["host"] == "a" and gone.state == "resolved"
    assert state.step([((("host", "b"),), 0.99)], 1030) == []  # and nothing more of it


def test_a_series_that_stops_fires_no_data_after_for_and_resolves_when_it_returns():
    state = RuleState(rule(**{"for": 60}))
    b = (("host", "b"),)
    state.step([(HOST, 0.95), (b, 0.2)], 1000)
    state.step([(HOST, 0.95), (b, 0.2)], 1060)  # a is firing now
    assert state.step([(b, 0.2)], 1075) == []  # a stops: nothing says it is over, it stays firing...
    assert state.alerts[HOST].state == "firing"
    [pending] = [a for a in state.alerts.values() if a.no_data]  # ...and no data is pending
    assert pending.state == "pending" and pending.labels["host"] == "a"
    assert state.step([(b, 0.2)], 1100) == []  # not yet `for` since it was last seen
    [fired] = state.step([(b, 0.2)], 1135)
    assert fired.no_data and fired.state == "firing" and fired.value is None
    assert fired.labels["nodata"] == "true" and fired.last_seen == 1060
    assert fired.annotations["summary"] == "No data since 1970-01-01 00:17:40 UTC"
    assert state.step([(b, 0.2)], 1150) == []  # it stays firing while nothing arrives
    back = state.step([(HOST, 0.5), (b, 0.2)], 1165)  # samples return, below the threshold
    assert {(a.no_data, a.state) for a in back} == {(True, "resolved"), (False, "resolved")}
    assert state.alerts == {}


def test_a_firing_alert_whose_series_returns_still_high_goes_on_firing():
    state = RuleState(rule(**{"for": 0}))
    [fired] = state.step([(HOST, 0.95)], 1000)
    [nodata] = state.step([], 1015)  # no data fires; the value alert goes on firing
    assert nodata.no_data and nodata.state == "firing" and state.alerts[HOST].state == "firing"
    [back] = state.step([(HOST, 0.97)], 1030)
    assert back.no_data and back.state == "resolved"  # only the no-data alert ends
    assert state.alerts[HOST] is fired and fired.state == "firing" and fired.value == 0.97


def test_no_data_keep_holds_a_firing_alert_until_samples_return():
    state = RuleState(rule(**{"for": 0, "no_data": "keep"}))
    [fired] = state.step([(HOST, 0.95)], 1000)
    assert state.step([], 1015) == [] and state.step([], 1300) == []
    assert state.alerts[HOST].state == "firing"
    [resolved] = state.step([(HOST, 0.1)], 1315)
    assert resolved is fired and resolved.state == "resolved"


def test_a_pending_no_data_alert_that_sees_samples_again_leaves_no_event():
    state = RuleState(rule(**{"for": 300}))
    state.step([(HOST, 0.1)], 1000)
    assert state.step([], 1015) == []
    assert state.step([(HOST, 0.1)], 1030) == [] and state.alerts == {}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"condition": "=>"}, "condition"),
        ({"severity": "page"}, "severity"),
        ({"query": "cpu{host=a}"}, "query"),
        ({"window": 0}, "window"),
        ({"for": -5}, "for"),
        ({"id": "High CPU"}, "id"),
        ({"aggregation": "median"}, "aggregation"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_rules_name_the_field(change, words):
    with pytest.raises(ValueError, match=words):
        rule(**change)


def test_a_bad_rules_file_names_the_file_line_rule_and_field(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "rules:\n  - id: ok\n    name: Ok\n    query: up\n    condition: '<'\n    threshold: 1\n"
        "  - id: broken\n    name: Broken\n    query: up\n    condition: '=<'\n    threshold: 1\n"
    )
    with pytest.raises(ConfigError, match=r"mine.yaml:10: rule 'broken': condition: must be one of"):
        load_rule_files(tmp_path)


def test_shipped_rules_load():
    rules = load_rule_files(ConfigDir().alerts)
    assert {
        "high-cpu",
        "high-memory",
        "disk-almost-full",
        "disk-full-within-a-day",
        "scrape-target-down",
    } <= set(rules)


def cpu_history(store, clock, start, spike=(600, 1200)):
    """Twenty minutes of CPU every 5 s: 50 %, with 95 % between the spike's offsets."""
    samples = [
        Sample(CPU, HOST, 0.95 if spike[0] <= t < spike[1] else 0.5, start + t) for t in range(0, 1800, 5)
    ]
    store.append(samples)


def test_backtest_reports_a_known_episode_at_the_right_times(store, clock):
    start = clock.now - 1800
    cpu_history(store, clock, start)
    events = backtest(rule(**{"for": 120}), EmbeddedSource(store), start, clock.now, 15)
    assert [e["state"] for e in events] == ["firing", "resolved"]
    firing, resolved = events
    # The 1-minute average passes 90 % once most of its window is in the spike (about +55 s),
    # then has to stay there 120 s.
    assert start + 600 + 120 + 45 <= firing["at"] <= start + 600 + 120 + 75
    assert firing["value"] > 0.9 and firing["labels"]["host"] == "a"
    assert start + 1200 <= resolved["at"] <= start + 1200 + 60


class BrokenSource(EmbeddedSource):
    """The real embedded source, except that one query fails."""

    def instant(self, promql, at, scope=None):
        if "broken" in promql:
            raise RuntimeError("the store could not answer")
        return super().instant(promql, at, scope)


def test_a_failing_rule_shows_its_error_and_the_others_still_fire(store, clock, tmp_path):
    cpu_history(store, clock, clock.now - 1800, spike=(0, 1800))
    book = RuleBook(None, shipped={})
    book.put(rule(**{"for": 0}))
    book.put(rule(id="broken", name="Broken", query="broken_metric", **{"for": 0}))
    engine = AlertEngine(book, BrokenSource(store), clock)
    assert engine.evaluate() == 1
    assert engine.rule_status("broken")["error"] == "RuntimeError: the store could not answer"
    assert engine.rule_status("high-cpu")["state"] == "firing"
    [active] = engine.active()
    assert active["state"] == "firing" and active["value"] == pytest.approx(0.95)


def test_a_disabled_or_deleted_rule_resolves_its_alerts(store, clock, tmp_path):
    cpu_history(store, clock, clock.now - 1800, spike=(0, 1800))
    book = RuleBook(None, shipped={})
    book.put(rule(**{"for": 0}))
    engine = AlertEngine(book, EmbeddedSource(store), clock)
    engine.evaluate()
    book.put(rule(**{"for": 0, "enabled": False}))
    clock.advance(15)
    assert engine.evaluate() == 1
    assert engine.active() == [] and engine.history[-1]["state"] == "resolved"


def test_predicted_disk_full(store, clock):
    usage = "pulseboard_system_disk_usage_ratio"
    mount = (("mount", "/"),)
    start = clock.now - 3600
    store.append(Sample(usage, mount, 0.5 + 0.4 * t / 3600, start + t) for t in range(0, 3600, 60))
    values = dict(
        (freeze_labels(s.labels), v)
        for s, v in EmbeddedSource(store).instant(f"predict_linear({usage}[1h], 86400)", clock.now)
    )
    assert values[mount] > 1.0  # at 40 % an hour it is full well within a day
    filling = rule(
        id="disk",
        query=usage,
        aggregation="last",
        window=3600,
        predict=86400,
        condition=">=",
        threshold=1,
        **{"for": 0},
    )
    assert RuleState(filling).step(list(values.items()), clock.now)[0].state == "firing"
