"""The Prometheus-compatible query API: Prometheus' shapes and errors, GET and POST forms, lookback and
staleness, and reads bound to the caller's levels."""

from __future__ import annotations

import time

import pytest
import requests

from dashboard_app import __version__ as VERSION
from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from query.promql import answers
from query.promql.selectors import Reader
from tests.servers import api_key, logged_in, quiet_settings, serving
from tsdb.metrics import STALE_MARKER, Sample
from tsdb.store import Store, Tier

SECRETS = Secrets("s" * 48, "correct-horse-battery")
PASSWORD = "a-long-enough-password"
NOW = float(int(time.time()))


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp_path_factory.mktemp("query"), secrets=SECRETS)
    runtime.users.set("exe", PASSWORD, "operator", ["executive"])
    store = runtime.store
    rows = []
    for i in range(60):  # ten minutes every 10 s
        t = NOW - 600 + 10 * i
        rows += [
            Sample("pulseboard_business_orders_total", (("region", "eu"),), 100.0 + 5 * i, t),
            Sample("pulseboard_business_orders_total", (("region", "us"),), 50.0 + 2 * i, t),
            Sample("pulseboard_system_load1", (("host", "zz-secret"),), 0.5, t),
        ]
    rows.append(Sample("pulseboard_business_orders_total", (("region", "gone"),), 1.0, NOW - 300))
    rows.append(Sample("pulseboard_business_orders_total", (("region", "gone"),), STALE_MARKER, NOW - 250))
    store.append(rows)
    with serving(runtime) as running:
        running.admin = logged_in(running.url, "admin", SECRETS.admin_password)
        running.exe = logged_in(running.url, "exe", PASSWORD)
        yield running
    runtime.archive.close()


def ask(http, pb, path: str, method: str = "GET", **params) -> requests.Response:
    if method == "GET":
        return http.get(pb.url + path, params=params, timeout=10)
    return http.post(pb.url + path, data=params, timeout=10)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_instant_and_range_queries_answer_in_prometheus_shapes(pb, method):
    answer = ask(
        pb.admin,
        pb,
        "/api/v1/query",
        method,
        query="sum by (region) (rate(pulseboard_business_orders_total[1m]))",
        time=NOW - 5,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "success" and body["data"]["resultType"] == "vector"
    values = {s["metric"]["region"]: s["value"] for s in body["data"]["result"]}
    assert values == {"eu": [NOW - 5, "0.5"], "us": [NOW - 5, "0.2"]}  # 5 and 2 per 10 s
    ranged = ask(
        pb.admin,
        pb,
        "/api/v1/query_range",
        method,
        query="pulseboard_business_orders_total{region='eu'}",
        start=NOW - 60,
        end=NOW - 1,
        step="20s",
    ).json()
    assert ranged["data"]["resultType"] == "matrix"
    (series,) = ranged["data"]["result"]
    assert series["metric"] == {"__name__": "pulseboard_business_orders_total", "region": "eu"}
    assert [t for t, _ in series["values"]] == [NOW - 60, NOW - 40, NOW - 20]  # steps from start
    assert all(isinstance(v, str) for _, v in series["values"])
    scalar = ask(pb.admin, pb, "/api/v1/query", method, query="1 + 1", time=NOW).json()["data"]
    assert scalar == {"resultType": "scalar", "result": [NOW, "2"]}


def test_lookback_and_staleness_decide_what_an_instant_query_sees(pb):
    def regions(at):
        answer = ask(pb.admin, pb, "/api/v1/query", query="pulseboard_business_orders_total", time=at).json()
        return {s["metric"]["region"] for s in answer["data"]["result"]}

    assert regions(NOW - 280) == {"eu", "us", "gone"}
    assert regions(NOW - 240) == {"eu", "us"}  # the staleness marker at -250 ended it
    assert regions(NOW + 290) == {"eu", "us"}  # the newest sample (-10) is within 5 minutes
    assert regions(NOW + 291) == set()  # and then it is not


@pytest.mark.parametrize(
    "path, params, needle",
    [
        ("/api/v1/query", {"query": "rate(pulseboard_business_orders_total)"}, "query"),
        ("/api/v1/query", {"query": "mad_over_time(up[5m])"}, "mad_over_time() is not supported"),
        ("/api/v1/query", {"query": "label_replace(up, '~bad', 'b', 'c', 'd')"}, "destination label name"),
        ("/api/v1/query", {"query": "count_values('~bad', up)"}, "invalid label name"),
        ("/api/v1/query", {"query": "label_replace(up, 'a', 'b', 'c', '(')"}, "regular expression"),
        ("/api/v1/query", {}, '"query"'),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, '"time"'),
        ("/api/v1/query_range", {"query": "up", "start": NOW, "end": NOW - 60, "step": 10}, "before start"),
        ("/api/v1/query_range", {"query": "up", "start": NOW - 60, "end": NOW, "step": 0}, "step"),
        (
            "/api/v1/query_range",
            {"query": "up", "start": NOW - 11_001, "end": NOW, "step": 1},
            "11,000 points",
        ),
        (
            "/api/v1/query_range",
            {"query": "up[5m]", "start": NOW - 60, "end": NOW, "step": 10},
            "range vector",
        ),
        ("/api/v1/series", {}, "match[]"),
        ("/api/v1/query", {"query": 'up{job=~"("}'}, "regex"),
    ],
)
def test_bad_queries_answer_bad_data_with_the_reason(pb, path, params, needle):
    answer = ask(pb.admin, pb, path, **params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert needle in body["error"]


def test_series_labels_values_metadata_and_buildinfo(pb):
    series = ask(pb.admin, pb, "/api/v1/series", **{"match[]": "pulseboard_business_orders_total"}).json()[
        "data"
    ]
    assert {s["region"] for s in series} == {"eu", "us", "gone"}
    assert all(s["__name__"] == "pulseboard_business_orders_total" for s in series)
    labels = ask(pb.admin, pb, "/api/v1/labels").json()["data"]
    assert {"__name__", "region", "host"} <= set(labels)
    values = ask(pb.admin, pb, "/api/v1/label/region/values").json()["data"]
    assert values == ["eu", "gone", "us"]
    names = ask(pb.admin, pb, "/api/v1/label/__name__/values").json()["data"]
    assert "pulseboard_system_load1" in names
    info = ask(pb.admin, pb, "/api/v1/status/buildinfo").json()
    assert info["status"] == "success" and info["data"]["version"] == VERSION


def test_a_caller_reads_only_its_levels(pb):
    names = ask(pb.exe, pb, "/api/v1/label/__name__/values").json()["data"]
    assert "pulseboard_business_orders_total" in names and "pulseboard_system_load1" not in names
    everything = ask(pb.exe, pb, "/api/v1/query", query='{__name__=~".+"}', time=NOW).text
    assert "zz-secret" not in everything and "orders" in everything
    assert "zz-secret" not in ask(pb.exe, pb, "/api/v1/label/host/values").text
    refused = ask(pb.exe, pb, "/api/v1/query", query="pulseboard_system_load1")
    assert refused.status_code == 403 and refused.json()["status"] == "error"
    assert "pulseboard_system_load1" in refused.json()["error"]


def test_grafana_style_callers_use_keys_and_strangers_are_refused(pb):
    reader = api_key(pb.admin, pb.url, ["read"])
    pusher = api_key(pb.admin, pb.url, ["ingest"])
    params = {"query": "up"}
    assert (
        requests.get(
            pb.url + "/api/v1/query", params=params, headers={"Authorization": f"Bearer {reader}"}, timeout=5
        ).status_code
        == 200
    )
    assert (
        requests.get(pb.url + "/api/v1/query", params=params, auth=("grafana", reader), timeout=5).status_code
        == 200
    )
    assert (
        requests.get(
            pb.url + "/api/v1/query", params=params, headers={"Authorization": f"Bearer {pusher}"}, timeout=5
        ).status_code
        == 403
    )
    assert requests.get(pb.url + "/api/v1/query", params=params, timeout=5).status_code == 401


def test_ranges_older_than_the_raw_tier_are_answered_from_the_minute_rollup(clock):
    store = Store(Tier(0, 600), 1, [Tier(60, 86400)], clock=clock)
    store.append(Sample("jobs_total", (), 2.0 * i, clock.now - 3600 + 10 * i) for i in range(360))
    reader = Reader(store, lambda name: True, lambda name: None)
    at = round(clock.now * 1000)
    counted = answers.instant(reader, "count_over_time(jobs_total[1h])", at)["result"]
    # ten minutes of raw samples every 10 s, and before them the minute buckets' counts: every sample
    assert float(counted[0]["value"][1]) == 360
    rate = answers.instant(reader, "rate(jobs_total[30m] offset 20m)", at)["result"]
    assert float(rate[0]["value"][1]) == pytest.approx(0.2, rel=0.02)  # 2 per 10 s, from minute buckets
