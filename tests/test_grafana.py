"""Grafana's Prometheus data source, request by request (as its backend and query editor send them:
health check, build info, rules, the metrics browser's labels, values, series and metadata, panel and
variable queries, exemplars), asked of Pulseboard and of a real Prometheus holding the same samples and
the same Prometheus rule file. Pulseboard must answer each as Prometheus does."""

from __future__ import annotations

import time

import pytest
import requests

from dashboard_app.alerts.rules import prometheus_rule_file
from dashboard_app.config_dir import ConfigDir
from dashboard_app.runtime import Runtime
from tests import demo_service
from tests.servers import prometheus_query, prometheus_server, quiet_settings, serving
from tests.test_promql_compliance import differences

RULES = """\
groups:
  - name: demo
    rules:
      - alert: MemoryInUse
        expr: demo_memory_usage_bytes{type="used"} > 1e9
        labels: {severity: critical, team: infra}
        annotations: {summary: "{{ $labels.instance }} uses {{ $value }} bytes"}
      - alert: NeverFires
        expr: demo_num_cpus > 1000
        for: 5m
      - record: instance:demo_cpu_usage_seconds:rate1m
        expr: sum by (instance) (rate(demo_cpu_usage_seconds_total[1m]))
"""
HISTOGRAM = "demo_api_request_duration_seconds"


@pytest.fixture(scope="module")
def grafana_pair(tmp_path_factory):
    """(Pulseboard URL, Prometheus URL, end of data, runtime), both with the demo samples and RULES."""
    tmp = tmp_path_factory.mktemp("grafana")
    (tmp / "config" / "alerts").mkdir(parents=True)
    (tmp / "config" / "alerts" / "demo.yml").write_text(RULES)
    rule_file = tmp / "rules.yml"
    rule_file.write_text(RULES)
    now_ms = int(time.time() * 1000) // 1000 * 1000
    series = demo_service.samples(now_ms - 30 * 60_000, now_ms)
    settings = quiet_settings(store__raw__retention="3h")
    runtime = Runtime(settings, tmp / "data", config=ConfigDir(tmp / "config"))
    try:
        with (
            serving(runtime) as pb,
            prometheus_server(
                tmp,
                {},
                extra=f"rule_files: ['{rule_file}']\n",
                flags=("--web.enable-remote-write-receiver",),
                evaluation_interval="1s",
            ) as prom,
        ):
            demo_service.write(prom + "/api/v1/write", series)
            demo_service.write(pb.url + "/api/v1/write", series)
            runtime.alerts.evaluate()
            deadline = time.monotonic() + 30  # Prometheus evaluates its rules every second
            while time.monotonic() < deadline and not (
                requests.get(prom + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                and prometheus_query(prom, "instance:demo_cpu_usage_seconds:rate1m")  # its rule evaluated
            ):
                time.sleep(0.5)
            yield pb.url, prom, now_ms / 1000, runtime
    finally:
        runtime.archive.close()


def requests_of_grafana(end: float) -> list[tuple[str, str, dict]]:
    """(method, path, parameters) as Grafana sends them, GET in the URL and POST as a form."""
    start = end - 900
    window = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
    return [
        ("POST", "/api/v1/query", {"query": "1+1", "time": f"{end:.3f}"}),  # the data source's health check
        ("GET", "/api/v1/status/buildinfo", {}),
        ("GET", "/api/v1/rules", {}),
        ("GET", "/api/v1/rules", {"type": "alert"}),
        ("GET", "/api/v1/rules", {"type": "record"}),
        ("GET", "/api/v1/alerts", {}),
        ("GET", "/api/v1/labels", window),
        ("POST", "/api/v1/labels", window),
        ("GET", "/api/v1/labels", {**window, "match[]": "demo_num_cpus"}),
        ("GET", "/api/v1/label/__name__/values", window),
        ("GET", "/api/v1/label/instance/values", window),
        ("GET", "/api/v1/label/type/values", {**window, "match[]": "demo_memory_usage_bytes"}),
        ("GET", "/api/v1/label/le/values", {**window, "match[]": f"{HISTOGRAM}_bucket"}),
        ("GET", "/api/v1/series", {**window, "match[]": "demo_num_cpus"}),
        ("POST", "/api/v1/series", {**window, "match[]": 'demo_memory_usage_bytes{type="free"}'}),
        ("GET", "/api/v1/metadata", {}),
        ("GET", "/api/v1/metadata", {"metric": HISTOGRAM}),
        (
            "POST",
            "/api/v1/query_range",
            {"query": "rate(demo_cpu_usage_seconds_total[1m])", **window, "step": "15"},
        ),
        (
            "POST",
            "/api/v1/query_range",
            {
                "query": f"histogram_quantile(0.95, sum by (le) (rate({HISTOGRAM}_bucket[5m])))",
                **window,
                "step": "30",
            },
        ),
        (
            "POST",
            "/api/v1/query_range",
            {"query": "sum by (instance) (demo_memory_usage_bytes)", **window, "step": "60"},
        ),
        ("GET", "/api/v1/query_range", {"query": "demo_num_cpus", **window, "step": "60s"}),
        (
            "POST",
            "/api/v1/query",
            {"query": 'topk(3, demo_memory_usage_bytes{type="used"})', "time": f"{end:.3f}"},
        ),
        (
            "POST",
            "/api/v1/query",
            {"query": "count(demo_num_cpus)", "time": f"{end:.3f}"},
        ),  # query_result(...)
        ("POST", "/api/v1/query", {"query": "instance:demo_cpu_usage_seconds:rate1m", "time": f"{end:.3f}"}),
        ("POST", "/api/v1/query_exemplars", {"query": f"{HISTOGRAM}_bucket", **window}),
        ("GET", "/api/v1/query_exemplars", {"query": "demo_num_cpus", **window}),
        (
            "POST",
            "/api/v1/query_range",
            {"query": "rate(demo_cpu_usage_seconds_total[1m]", **window, "step": "15"},
        ),
        ("POST", "/api/v1/query", {"query": "demo_num_cpus", "time": "yesterday"}),
        ("GET", "/api/v1/label/__name__/values", {**window, "match[]": '{__name__=~"demo_.*"}'}),
        ("POST", "/api/v1/query_range", {"query": "demo_num_cpus", **window, "step": "0"}),
    ]


def ask(url: str, method: str, path: str, params: dict) -> requests.Response:
    if method == "GET":
        return requests.get(url + path, params=params, timeout=30)
    return requests.post(url + path, data=params, timeout=30)


def same(path: str, theirs, ours) -> list[str]:
    """What differs between two successful answers' data."""
    if path.endswith(("/query", "/query_range")):
        return differences(theirs, ours)
    if path.endswith("/series"):
        key = lambda items: sorted(tuple(sorted(d.items())) for d in items)  # noqa: E731
        return [] if key(theirs) == key(ours) else [f"series {ours} where Prometheus has {theirs}"]
    if path.endswith(("/labels", "/values")):
        return [] if sorted(theirs) == sorted(ours) else [f"{sorted(set(ours) ^ set(theirs))} differ"]
    if path.endswith("/rules"):
        return _rules(theirs, ours)
    if path.endswith("/alerts"):
        t = {(a["labels"]["alertname"], a["labels"].get("instance")): a["state"] for a in theirs["alerts"]}
        o = {(a["labels"]["alertname"], a["labels"].get("instance")): a["state"] for a in ours["alerts"]}
        keys = {k for a in ours["alerts"] for k in a} ^ {k for a in theirs["alerts"] for k in a}
        return ([] if t == o else [f"alerts {o} where Prometheus has {t}"]) + (
            [f"alert fields differ: {keys}"] if keys else []
        )
    if path.endswith("/buildinfo"):
        return [] if set(theirs) == set(ours) else [f"fields {set(ours)} where Prometheus has {set(theirs)}"]
    if path.endswith("/query_exemplars"):
        return [] if ours == [] else [f"exemplars {ours}"]
    return []  # metadata: Prometheus knows none of remote-written series; checked on its own below


def _rules(theirs: dict, ours: dict) -> list[str]:
    def listing(data):
        return {(r["name"], r["type"]) for g in data["groups"] for r in g["rules"]}

    found = [] if listing(theirs) == listing(ours) else [f"rules {listing(ours)} vs {listing(theirs)}"]
    if not theirs["groups"] or not ours["groups"]:
        return found
    group_keys = set(theirs["groups"][0]) - set(ours["groups"][0])
    rule_keys = {k for g in theirs["groups"] for r in g["rules"] for k in r} - {
        k for g in ours["groups"] for r in g["rules"] for k in r
    }
    return found + ([f"missing fields {group_keys | rule_keys}"] if group_keys | rule_keys else [])


def test_every_request_grafana_sends_is_answered_as_prometheus_answers_it(grafana_pair):
    pb, prom, end, _ = grafana_pair
    table = []
    for method, path, params in requests_of_grafana(end - 30):
        theirs, ours = ask(prom, method, path, params), ask(pb, method, path, params)
        row = f"{method} {path} {params.get('query') or params.get('match[]') or params.get('type') or ''}"
        if theirs.status_code != ours.status_code:
            table.append(f"{row}: HTTP {ours.status_code}, Prometheus {theirs.status_code} {ours.text[:200]}")
            continue
        t, o = theirs.json(), ours.json()
        if t["status"] != o["status"] or t.get("errorType") != o.get("errorType"):
            mine, prometheus = (
                f"{o.get('status')}/{o.get('errorType')}",
                f"{t['status']}/{t.get('errorType')}",
            )
            table.append(f"{row}: {mine}, Prometheus {prometheus}")
            continue
        if t["status"] == "success":
            table += [f"{row}: {d}" for d in same(path, t["data"], o["data"])]
    assert table == [], "\n".join(table)
    assert len(requests_of_grafana(end)) == 30


def test_metadata_names_histograms_by_their_family_as_grafanas_query_builder_expects(grafana_pair):
    pb, _, _, _ = grafana_pair
    everything = requests.get(pb + "/api/v1/metadata", timeout=10).json()["data"]
    assert everything[HISTOGRAM][0]["type"] == "histogram"
    assert not {f"{HISTOGRAM}_bucket", f"{HISTOGRAM}_count", f"{HISTOGRAM}_sum"} & set(everything)
    one = requests.get(pb + "/api/v1/metadata", params={"metric": HISTOGRAM}, timeout=10).json()["data"]
    assert list(one) == [HISTOGRAM] and one[HISTOGRAM][0]["type"] == "histogram"


def test_a_prometheus_rule_file_loads_unchanged_and_its_recording_rule_is_stored(grafana_pair):
    pb, _, end, runtime = grafana_pair
    rules = {r.name: r for r in runtime.rules.rules.values()}
    assert rules["MemoryInUse"].expr == 'demo_memory_usage_bytes{type="used"} > 1e9'
    assert rules["MemoryInUse"].severity == "critical" and rules["NeverFires"].for_ == 300
    firing = [a for a in runtime.alerts.active() if a["name"] == "MemoryInUse"]
    assert {a["labels"]["instance"] for a in firing} == set(demo_service.INSTANCES)
    assert all(a["state"] == "firing" and a["labels"]["team"] == "infra" for a in firing)
    assert all(a["annotations"]["summary"].startswith(a["labels"]["instance"] + " uses ") for a in firing)
    stored = requests.get(
        pb + "/api/v1/query", params={"query": "instance:demo_cpu_usage_seconds:rate1m"}, timeout=10
    ).json()["data"]["result"]
    assert {s["metric"]["instance"] for s in stored} == set(demo_service.INSTANCES)
    assert all(float(s["value"][1]) > 0 for s in stored)
    text = prometheus_rule_file(list(runtime.rules.rules.values()))  # the export: the rules as written
    assert 'demo_memory_usage_bytes{type="used"} > 1e9' in text
