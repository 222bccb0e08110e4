"""Hostile and unlucky input to every ingest route and to PromQL, against the real server process:
never a 5xx, never a crash, memory bounded."""

from __future__ import annotations

import gzip
import time

import cramjam
import psutil
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from ingest.prompb.remote_pb2 import WriteRequest
from tests.servers import free_port, start, stop, wait_http

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
RSS_GROWTH = 300 * 2**20  # what all the examples together may leave the server holding


class Server:
    def __init__(self, proc, url: str):
        self.proc, self.url = proc, url
        self.http = requests.Session()

    def rss(self) -> int:
        tree = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)])

    def post(self, path: str, **kwargs) -> requests.Response:
        answer = self.http.post(self.url + path, timeout=60, **kwargs)
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
        assert self.proc.poll() is None, "the server died"
        return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    proc = start(tmp_path_factory.mktemp("data"), port, PULSEBOARD_DEMO="false")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/-/healthy", proc)
        running = Server(proc, url)
        before = running.rss()
        yield running
        assert running.rss() - before < RSS_GROWTH
        assert requests.get(url + "/-/healthy", timeout=10).status_code == 200
    finally:
        stop(proc)


NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.floats().map(repr),
    st.sampled_from(["1e400", "-0", "NaN", "inf", "+Inf", "0x10", "1_000", "١٢", ""]),
)
DURATIONS = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.integers(min_value=0, max_value=10**30),
    st.sampled_from(["ms", "s", "m", "h", "d", "w", "y", ""]),
)


def promql(depth: int = 4):
    leaf = st.one_of(
        st.sampled_from(["up", "x", 'x{a="b"}', 'x{a=~".*"}', "pulseboard_system_cpu_usage_ratio", "time()"]),
        NUMBERS,
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda e: f"({e})", inner),
            st.builds(
                lambda e, o, f: f"{e} {o} {f}",
                inner,
                st.sampled_from(["+", "/", "^", ">", "and", "or"]),
                inner,
            ),
            st.builds(
                lambda f, e, d: f"{f}({e}[{d}])",
                st.sampled_from(["rate", "quantile_over_time", "deriv"]),
                inner,
                DURATIONS,
            ),
            st.builds(
                lambda f, k, e: f"{f}({k}, {e})",
                st.sampled_from(["topk", "bottomk", "quantile"]),
                NUMBERS,
                inner,
            ),
            st.builds(lambda e, d: f"{e} offset {d}", inner, DURATIONS),
            st.builds(lambda e, n: "(" * n + e + ")" * n, inner, st.integers(min_value=0, max_value=3000)),
        ),
        max_leaves=depth * 4,
    )


@FUZZ
@given(query=promql(), at=NUMBERS, step=st.one_of(NUMBERS, DURATIONS))
def test_any_promql_text_gets_a_reasoned_answer(server, query, at, step):
    server.post("/api/v1/query", data={"query": query, "time": at})
    now = time.time()
    server.post("/api/v1/query_range", data={"query": query, "start": now - 3600, "end": now, "step": step})
    server.post("/api/v1/series", data={"match[]": query})


LINE = st.builds(
    lambda name, tag, field, value, suffix, stamp: f"{name},{tag} {field}={value}{suffix} {stamp}",
    st.sampled_from(["cpu", "weird name", "x" * 300, ""]),
    st.sampled_from(["host=a", "host=", "=b", "a=b=c"]),
    st.sampled_from(["usage", "f", ""]),
    NUMBERS,
    st.sampled_from(["", "i", "u"]),
    st.one_of(st.integers(min_value=-(10**300), max_value=10**300).map(str), st.just("")),
)


@FUZZ
@given(lines=st.lists(LINE, min_size=1, max_size=20), zipped=st.booleans())
def test_any_line_protocol_gets_a_reasoned_answer(server, lines, zipped):
    body = "\n".join(lines).encode()
    headers = {"Content-Encoding": "gzip"} if zipped else {}
    server.post("/api/v2/write?precision=ns", data=gzip.compress(body) if zipped else body, headers=headers)


@FUZZ
@given(
    scale=st.integers(min_value=-50, max_value=50),
    offset=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    buckets=st.integers(min_value=0, max_value=2_000_000),
    value=st.floats(),
    stamp=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_any_otlp_export_gets_a_reasoned_answer_without_expanding_past_the_cap(
    server, scale, offset, buckets, value, stamp
):
    export = ExportMetricsServiceRequest()
    metric = export.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "request.duration"
    point = metric.exponential_histogram.data_points.add()
    point.scale, point.positive.offset, point.count, point.sum = scale, offset, 3, value
    point.time_unix_nano = stamp
    point.positive.bucket_counts.extend([1] * min(buckets, 50) + [0] * max(0, buckets - 50))
    body = gzip.compress(export.SerializeToString())  # a million buckets in a kilobyte or two
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    answer = server.post("/v1/metrics", data=body, headers=headers)
    if buckets > 10_000:
        assert answer.status_code == 413


@FUZZ
@given(
    series=st.lists(
        st.tuples(
            st.lists(
                st.tuples(st.sampled_from(["__name__", "job", "", "le", "a" * 200]), st.text(max_size=30)),
                max_size=4,
            ),
            st.lists(
                st.tuples(st.floats(), st.integers(min_value=-(2**63), max_value=2**63 - 1)), max_size=5
            ),
        ),
        max_size=5,
    )
)
def test_any_remote_write_gets_a_reasoned_answer(server, series):
    write = WriteRequest()
    for labels, samples in series:
        ts = write.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for value, stamp in samples:
            ts.samples.add(value=value, timestamp=stamp)
    body = bytes(cramjam.snappy.compress_raw(write.SerializeToString()))
    server.post("/api/v1/write", data=body, headers={"Content-Encoding": "snappy"})


def test_an_exponential_histogram_of_a_million_buckets_is_refused_before_it_is_expanded(server):
    export = ExportMetricsServiceRequest()
    metric = export.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "bomb"
    point = metric.exponential_histogram.data_points.add()
    point.scale, point.count, point.time_unix_nano = 0, 1, time.time_ns()
    point.positive.bucket_counts.extend([0] * 1_000_000)
    body = gzip.compress(export.SerializeToString())
    assert len(body) < 4096
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    answer = server.post("/v1/metrics", data=body, headers=headers)
    assert answer.status_code == 413 and "10,000 samples" in answer.json()["error"]
