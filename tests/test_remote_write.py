"""Prometheus remote write in: Debian's Prometheus scraping a Pulseboard agent and node_exporter and
remote-writing to a Pulseboard server; bad bodies refused with the reason, storing nothing."""

from __future__ import annotations

import math
import time

import cramjam
import pytest
import requests

from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from ingest.prompb.remote_pb2 import MetricMetadata, WriteRequest
from tests.servers import (
    api_key,
    free_port,
    latest_by_labels,
    logged_in,
    node_exporter,
    prometheus_query,
    prometheus_server,
    quiet_settings,
    serving,
    start_agent,
    stop,
    wait_http,
)

SECRETS = Secrets("s" * 48, "correct-horse-battery")
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}


def until(check, timeout: float = 40.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A Pulseboard server receiving what a real Prometheus scrapes from an agent and node_exporter."""
    tmp = tmp_path_factory.mktemp("remote-write")
    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp / "data", secrets=SECRETS)
    agent_port = free_port()
    agent = start_agent(agent_port)
    try:
        wait_http(f"http://127.0.0.1:{agent_port}/metrics", agent)
        with serving(runtime) as pb, node_exporter() as node_url:
            pb.admin = logged_in(pb.url, "admin", SECRETS.admin_password)
            pb.key = api_key(pb.admin, pb.url, ["ingest"])
            remote = (
                "  - job_name: prometheus\n"  # Prometheus itself: its request durations, a real histogram
                "    static_configs: [{targets: ['{self}']}]\n"
                "remote_write:\n"
                f"  - url: {pb.url}/api/v1/write\n"
                f"    authorization: {{credentials: {pb.key}}}\n"
                "    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 2000}\n"
                "    metadata_config: {send_interval: 2s}\n"
            )
            targets = {"agent": f"127.0.0.1:{agent_port}", "node": node_url.removeprefix("http://")[:-8]}
            with prometheus_server(tmp, targets, job="hosts", extra=remote) as prom:
                pb.prometheus, pb.agent, pb.started = prom, agent, time.time()
                until(lambda: latest(pb, 'node_cpu_seconds_total{instance="node"}'), what="remote write")
                yield pb
    finally:
        if agent.poll() is None:
            stop(agent)
        runtime.archive.close()


def latest(pb, selector: str) -> dict:
    return latest_by_labels(pb.admin, pb.url, selector)


def write(pb, request: WriteRequest | bytes, key: str | None = None, **headers) -> requests.Response:
    body = (
        request
        if isinstance(request, bytes)
        else bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    )
    auth = {"Authorization": f"Bearer {key or pb.key}"}
    return requests.post(
        pb.url + "/api/v1/write", data=body, headers={**HEADERS, **auth, **headers}, timeout=10
    )


def one_series(name: str, value: float, ts_ms: int, **labels: str) -> WriteRequest:
    request = WriteRequest()
    series = request.timeseries.add()
    for key, val in {"__name__": name, **labels}.items():
        series.labels.add(name=key, value=val)
    series.samples.add(value=value, timestamp=ts_ms)
    return request


def test_prometheus_remote_writes_every_scraped_series_with_its_labels_and_types(pipeline):
    cpu = latest(pipeline, 'node_cpu_seconds_total{instance="node"}')
    assert {dict(k)["mode"] for k in cpu} >= {"idle", "user", "system"}
    assert all(dict(k)["job"] == "hosts" for k in cpu)
    # The same series Prometheus holds, with the same labels.
    theirs = prometheus_query(pipeline.prometheus, 'node_cpu_seconds_total{instance="node"}')
    assert {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")) for s in theirs} == set(
        cpu
    )
    up = latest(pipeline, 'up{job="hosts"}')
    assert {dict(k)["instance"] for k, v in up.items() if v == 1} == {"agent", "node"}
    # Types: from the metadata Prometheus sends, else the name's convention.
    specs = {
        name: pipeline.admin.get(pipeline.url + "/api/v1/metadata", params={"metric": name}).json()["data"]
        for name in ("node_cpu_seconds_total", "node_load1", "node_memory_MemFree_bytes")
    }
    assert specs["node_cpu_seconds_total"]["node_cpu_seconds_total"][0]["type"] == "counter"
    assert specs["node_load1"]["node_load1"][0]["type"] == "gauge"
    until(
        lambda: pipeline.admin.get(pipeline.url + "/api/v1/metadata", params={"metric": "node_load1"}).json()[
            "data"
        ]["node_load1"][0]["help"],
        what="help text from Prometheus' metadata",
    )


# Each names a feature of the evaluator; both servers answer from the same samples.
EXPRESSIONS = [
    "node_cpu_seconds_total",
    'node_cpu_seconds_total{mode=~"user|system",cpu!="1"}',
    'node_cpu_seconds_total{mode!~"idle|iowait"} offset 10s',
    "rate(node_cpu_seconds_total[20s])",
    'irate(node_cpu_seconds_total{mode="user"}[20s])',
    "increase(node_network_receive_bytes_total[30s])",
    "delta(node_memory_MemFree_bytes[30s])",
    "deriv(node_memory_MemFree_bytes[30s])",
    "predict_linear(node_memory_MemFree_bytes[30s], 3600)",
    "avg_over_time(node_load1[30s])",
    "min_over_time(node_memory_MemFree_bytes[30s])",
    "max_over_time(node_memory_MemFree_bytes[30s] offset 5s)",
    "sum_over_time(scrape_samples_scraped[30s])",
    "count_over_time(up[30s])",
    "last_over_time(node_load1[30s])",
    "stddev_over_time(node_memory_MemFree_bytes[30s])",
    "quantile_over_time(0.9, scrape_duration_seconds[30s])",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[30s])))",
    "histogram_quantile(0.5, rate(prometheus_http_request_duration_seconds_bucket[30s]))",
    "sum by (mode) (rate(node_cpu_seconds_total[20s]))",
    "avg without (cpu) (rate(node_cpu_seconds_total[20s]))",
    "min by (mode) (node_cpu_seconds_total)",
    "max(scrape_duration_seconds)",
    "count by (mode) (node_cpu_seconds_total)",
    "topk(3, node_cpu_seconds_total)",
    "bottomk(2, rate(node_cpu_seconds_total[20s]))",
    "quantile(0.5, rate(node_cpu_seconds_total[20s]))",
    "node_memory_MemFree_bytes / node_memory_MemTotal_bytes * 100",
    "node_memory_MemFree_bytes / on(instance, job) node_memory_MemTotal_bytes",
    "node_memory_MemFree_bytes - ignoring(job) node_memory_MemTotal_bytes",
    "node_cpu_seconds_total / on(cpu) group_left sum by (cpu) (node_cpu_seconds_total)",
    "node_cpu_seconds_total > 10",
    "node_cpu_seconds_total > bool 10",
    "10 < node_cpu_seconds_total",
    "scrape_duration_seconds > on(instance) scrape_samples_scraped / 1e6",
    "up == 1",
    "up and on(instance) node_load1 >= 0",
    "up or vector(5)",
    'up unless up{instance="node"}',
    "abs(delta(node_memory_MemFree_bytes[30s]))",
    "clamp_min(node_load1, 0.5)",
    "clamp_max(node_load1, 0.1)",
    "round(scrape_duration_seconds, 0.001)",
    "time()",
    "scalar(count(up))",
    "vector(3) * 2",
    "2 ^ 3 + 1",
    "-node_load1",
]


def _points(answer: dict) -> dict:
    """{labels: [(time, value)]} of a vector, matrix or scalar answer."""
    data = answer["data"]
    if data["resultType"] == "scalar":
        return {(): [tuple(data["result"])]}
    out = {}
    for series in data["result"]:
        points = series.get("values") or [series["value"]]
        out[tuple(sorted(series["metric"].items()))] = [(float(t), v) for t, v in points]
    return out


def _same(ours: dict, theirs: dict, expr: str) -> None:
    assert set(ours) == set(theirs), f"{expr}: series differ: {set(ours) ^ set(theirs)}"
    for key, points in theirs.items():
        mine = ours[key]
        assert [t for t, _ in mine] == [t for t, _ in points], f"{expr} {key}: times differ"
        for (_, a), (_, b) in zip(mine, points):
            x, y = float(a), float(b)
            assert x == y or (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9), (
                f"{expr} {key}: {a} != {b}"
            )


def test_promql_answers_equal_prometheus_point_by_point(pipeline):
    """The same expressions, instant and over a range, asked of Prometheus and of Pulseboard."""
    until(lambda: time.time() - pipeline.started > 45, timeout=60, what="45 s of samples")
    end = round(time.time() - 8, 3)

    def delivered() -> bool:  # every target's samples up to the end have reached Pulseboard
        raw = pipeline.admin.get(
            pipeline.url + "/api/v1/query", params={"query": "up[20s]", "time": end + 10}
        )
        newest = [float(s["values"][-1][0]) for s in raw.json()["data"]["result"]]
        return len(newest) == 3 and min(newest) >= end

    until(delivered, what="remote write to deliver every sample up to the end")
    cases = [
        ("query", {"time": end}),
        ("query", {"time": end - 12.345}),
        ("query_range", {"start": end - 30, "end": end, "step": 7}),
    ]
    answered = set()
    for expr in EXPRESSIONS:
        for path, params in cases:
            theirs = requests.get(
                f"{pipeline.prometheus}/api/v1/{path}", params={"query": expr, **params}, timeout=10
            )
            assert theirs.status_code == 200, f"{expr}: Prometheus says {theirs.text}"
            ours = pipeline.admin.post(
                f"{pipeline.url}/api/v1/{path}", data={"query": expr, **params}, timeout=10
            )
            assert ours.status_code == 200, f"{expr}: {ours.text}"
            assert ours.json()["data"]["resultType"] == theirs.json()["data"]["resultType"], expr
            _same(_points(ours.json()), _points(theirs.json()), f"{path} {expr} {params}")
            if theirs.json()["data"]["result"]:
                answered.add(expr)
    assert set(EXPRESSIONS) - answered == set()  # every comparison had something to compare


def test_a_target_that_goes_away_ends_its_series_as_in_prometheus(pipeline):
    exposed = prometheus_query(pipeline.prometheus, 'count by (__name__) ({instance="agent"})')
    agent_only = next(
        s["metric"]["__name__"] for s in exposed if not s["metric"]["__name__"].startswith(("up", "scrape_"))
    )
    assert latest(pipeline, f'{agent_only}{{instance="agent"}}')
    stop(pipeline.agent)
    # Prometheus writes staleness markers for the agent's series once a scrape fails; they end them here.
    until(lambda: not latest(pipeline, f'{agent_only}{{instance="agent"}}'), what="staleness markers")
    assert until(
        lambda: latest(pipeline, 'up{instance="agent"}') == {(("instance", "agent"), ("job", "hosts")): 0}
    )
    assert latest(pipeline, 'up{instance="node"}')  # the other target goes on


def test_nan_samples_are_kept_and_metadata_only_requests_are_accepted(pipeline):
    now = int(time.time() * 1000)
    assert write(pipeline, one_series("lab_reading", 1.5, now - 2000, probe="a")).status_code == 204
    assert write(pipeline, one_series("lab_reading", math.nan, now - 1000, probe="a")).status_code == 204
    described = WriteRequest()
    described.metadata.add(
        type=MetricMetadata.GAUGE, metric_family_name="lab_reading", help="A probe's reading.", unit="celsius"
    )
    assert write(pipeline, described).status_code == 204
    answer = pipeline.admin.get(pipeline.url + "/api/v1/metadata", params={"metric": "lab_reading"}).json()
    assert answer["data"]["lab_reading"] == [
        {"type": "gauge", "help": "A probe's reading.", "unit": "celsius"}
    ]
    at = (now - 500) / 1000
    got = pipeline.admin.get(
        pipeline.url + "/api/v1/query", params={"query": "lab_reading", "time": at}
    ).json()
    assert got["data"]["result"][0]["value"][1] == "NaN"


def _series_count(pipeline) -> int:
    return pipeline.runtime.store.series_count


@pytest.mark.parametrize(
    "body, headers, status, reason",
    [
        (b"not snappy at all", {}, 400, "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")), {}, 400, "WriteRequest"),
        (None, {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 415, "1.0"),
        (None, {"Content-Encoding": "gzip"}, 415, "snappy"),
    ],
)
def test_unreadable_bodies_are_refused_with_the_reason_and_store_nothing(
    pipeline, body, headers, status, reason
):
    before = _series_count(pipeline)
    good = one_series("refused_metric", 1, int(time.time() * 1000))
    answer = write(pipeline, body if body is not None else good, **headers)
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"]
    assert pipeline.runtime.store.lookup("refused_metric", ()) is None
    assert _series_count(pipeline) >= before


def test_a_bad_series_refuses_the_whole_request(pipeline):
    now = int(time.time() * 1000)
    request = one_series("batch_ok", 1, now)
    bad = request.timeseries.add()
    bad.labels.add(name="job", value="x")  # no __name__
    bad.samples.add(value=1, timestamp=now)
    answer = write(pipeline, request)
    assert answer.status_code == 400 and "timeseries[1]" in answer.json()["error"]
    assert pipeline.runtime.store.lookup("batch_ok", ()) is None

    native = one_series("batch_ok", 1, now)
    native.timeseries[0].histograms.add(count_int=3, sum=1.0, timestamp=now)
    answer = write(pipeline, native)
    assert answer.status_code == 400 and "native histograms" in answer.json()["error"]

    for value, at in ((1.0, now + 3_600_000), (math.inf, now)):
        answer = write(pipeline, one_series("batch_ok", value, at))
        assert answer.status_code == 400, answer.text
    assert pipeline.runtime.store.lookup("batch_ok", ()) is None


def test_oversized_and_over_the_cap_requests_are_refused(pipeline):
    now = int(time.time() * 1000)
    many = WriteRequest()
    for i in range(10_001):
        series = many.timeseries.add()
        series.labels.add(name="__name__", value="too_many")
        series.labels.add(name="i", value=str(i))
        series.samples.add(value=1, timestamp=now)
    answer = write(pipeline, many)
    assert answer.status_code in (413, 422), answer.text
    assert not pipeline.runtime.store.series("too_many")
    huge = bytes(cramjam.snappy.compress_raw(b"\0" * (pipeline.runtime.settings.ingest.max_body + 1)))
    answer = write(pipeline, huge)
    assert answer.status_code == 413 and "send smaller batches" in answer.json()["error"]


def test_a_key_without_the_ingest_scope_or_none_is_refused(pipeline):
    reader = api_key(pipeline.admin, pipeline.url, ["read"])
    request = one_series("unauthorised_metric", 1, int(time.time() * 1000))
    assert write(pipeline, request, key=reader).status_code == 403
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    assert (
        requests.post(pipeline.url + "/api/v1/write", data=body, headers=HEADERS, timeout=5).status_code
        == 401
    )
    assert pipeline.runtime.store.lookup("unauthorised_metric", ()) is None
