"""InfluxDB line protocol in: the real InfluxDB client, and the shapes Telegraf sends, into Pulseboard."""

from __future__ import annotations

import base64
import gzip
import time

import pytest
import requests
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from ingest.line_protocol import LineError, parse
from tests.servers import api_key, latest_by_labels, logged_in, quiet_settings, serving
from tsdb.metrics import MetricSpec

SECRETS = Secrets("s" * 48, "correct-horse-battery")


@pytest.fixture
def secured(tmp_path):
    runtime = Runtime(
        quiet_settings(auth__enabled="true", auth__metric_levels='{"cpu_": "operations"}'),
        tmp_path,
        secrets=SECRETS,
    )
    runtime.store.declare(MetricSpec("node_load1", "gauge", "none", "Load.", "operations"), "scrape")
    with serving(runtime) as pb:
        pb.admin = logged_in(pb.url, "admin", SECRETS.admin_password)
        pb.keys = {scope: api_key(pb.admin, pb.url, [scope]) for scope in ("ingest", "read")}
        yield pb
    runtime.archive.close()


def latest(pb, selector: str) -> dict:
    return latest_by_labels(pb.admin, pb.url, selector)


def test_the_influxdb_client_writes_points_and_lines(secured):
    now = int(time.time())
    with InfluxDBClient(url=secured.url, token=secured.keys["ingest"], org="shop") as client:
        writer = client.write_api(write_options=SYNCHRONOUS)
        writer.write(bucket="metrics", record="cpu,host=web-1,cpu=cpu-total usage_idle=93.5,usage_user=4i")
        writer.write(
            bucket="metrics",
            record=Point("disk")
            .tag("path", "/")
            .field("used_percent", 41.25)
            .field("ok", True)
            .time(now, "s"),
            write_precision=WritePrecision.S,
        )
        writer.write(
            bucket="metrics", record=f"mem,host=web-1 available=1024 {now * 1000}", write_precision="ms"
        )
    assert latest(secured, "cpu_usage_idle") == {(("cpu", "cpu-total"), ("host", "web-1")): 93.5}
    assert latest(secured, "cpu_usage_user") == {(("cpu", "cpu-total"), ("host", "web-1")): 4.0}
    assert latest(secured, "disk_used_percent") == {(("path", "/"),): 41.25}
    assert latest(secured, "disk_ok") == {(("path", "/"),): 1.0}
    assert latest(secured, "mem_available") == {(("host", "web-1"),): 1024.0}
    stored = secured.runtime.store.series("mem_available")[0]
    assert abs(secured.runtime.store.newest(stored.id) - now) < 1  # milliseconds read as milliseconds
    # Telegraf's CPU metrics are operations' by the prefix table; an unknown prefix is for admins only.
    assert secured.runtime.levels("cpu_usage_idle") == "operations"
    assert secured.runtime.levels("disk_used_percent") is None


def test_telegraf_shapes_v2_gzip_and_v1_basic_auth(secured):
    lines = b'system,host=web-1 load1=0.42,n_cpus=2i,uptime_format="1 day, 2:03" 1700000000\n'
    lines = lines.replace(b"1700000000", str(int(time.time())).encode())
    v2 = requests.post(
        secured.url + "/api/v2/write",
        params={"org": "x", "bucket": "telegraf", "precision": "s"},
        data=gzip.compress(lines),
        headers={"Authorization": f"Token {secured.keys['ingest']}", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert v2.status_code == 200, v2.text
    skipped = v2.json()["skipped"]
    assert skipped == [{"line": 1, "field": "uptime_format", "reason": skipped[0]["reason"]}]
    assert "string" in skipped[0]["reason"]
    assert latest(secured, "system_load1") == {(("host", "web-1"),): 0.42}
    basic = base64.b64encode(f"telegraf:{secured.keys['ingest']}".encode()).decode()
    v1 = requests.post(
        secured.url + "/write",
        params={"db": "telegraf", "precision": "s"},
        data=f"net,interface=eth0 bytes_recv=123456i {int(time.time())}",
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert v1.status_code == 204, v1.text
    assert latest(secured, "net_bytes_recv") == {(("interface", "eth0"),): 123456.0}
    counted = secured.runtime.instruments
    assert counted._counters[("pulseboard_ingest_samples_total", (("protocol", "influx"),))] >= 3


@pytest.mark.parametrize(
    "body, params, status, words",
    [
        ("cpu,host=a usage_idle=1\ncpu,host=a usage_idle=oops", {}, 400, "line 3"),
        ("cpu,host=a usage_idle=1 12345", {"precision": "s"}, 400, "precision"),
        (f"cpu,host=a usage_idle=1 {int(time.time()) + 86400}", {"precision": "s"}, 400, "ahead"),
        ("cpu,host=a usage_idle=1", {"precision": "week"}, 400, "precision must be one of"),
        ("cpu,host=a", {}, 400, "line 2"),
        ("pulseboard_system cpu_usage_ratio=1", {}, 409, "Pulseboard's own"),
        ("node load1=1", {}, 409, "declared by scrape"),
        ('cpu,host=a usage_idle="unterminated', {}, 400, "quote"),
    ],
)
def test_bad_lines_are_refused_with_the_line_and_nothing_is_stored(secured, body, params, status, words):
    answer = requests.post(
        secured.url + "/api/v2/write",
        params=params,
        data="cpu,host=good usage_system=5\n" + body,
        headers={"Authorization": f"Token {secured.keys['ingest']}"},
        timeout=10,
    )
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and answer.json()["message"] == answer.json()["error"]
    assert latest(secured, "cpu_usage_system") == {}  # the good line of the batch is not stored either


def test_writes_need_an_ingest_key(secured):
    line = "cpu,host=a usage_idle=1"
    assert requests.post(secured.url + "/api/v2/write", data=line, timeout=10).status_code == 401
    read = {"Authorization": f"Token {secured.keys['read']}"}
    assert (
        requests.post(secured.url + "/api/v2/write", data=line, headers=read, timeout=10).status_code == 403
    )
    with InfluxDBClient(url=secured.url, token="pb_not-a-key", org="shop") as client:
        with pytest.raises(InfluxDBError):
            client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=line)


def test_a_body_over_the_limit_after_gzip_is_refused(tmp_path):
    runtime = Runtime(quiet_settings(ingest__max_body="2048"), tmp_path)
    with serving(runtime) as pb:
        big = ("cpu,host=a usage_idle=1\n" * 2000).encode()
        answer = requests.post(
            pb.url + "/api/v2/write",
            data=gzip.compress(big),
            headers={"Content-Encoding": "gzip"},
            timeout=10,
        )
        assert answer.status_code == 413 and "after gzip" in answer.json()["error"]
        assert runtime.store.series("cpu_usage_idle") == []
    runtime.archive.close()


def test_the_parser_reads_escapes_types_and_names():
    body = (
        "weather\\ station,site=North\\,Pole,level\\=1=high "
        'temp=-3.5e1,ok=f,count=7u,note="a, \\"b\\"" 1700000000000\n'
        "# a comment\n"
        "\n"
        "9lives,host=a score=1\n"
    )
    batch, skipped = parse(body, "ms", 0.0)
    by_name = {}
    for k, row in enumerate(batch.rows):
        name, labels = batch.keys[row]
        by_name[name] = (dict(labels), batch.values[k], batch.times[k])
    assert by_name["weather_station_temp"] == ({"site": "North,Pole", "level_1": "high"}, -35.0, 1700000000.0)
    assert by_name["weather_station_ok"][1] == 0.0 and by_name["weather_station_count"][1] == 7.0
    assert by_name["_9lives_score"][2] == 0.0  # no timestamp: now
    assert [(s.line, s.field) for s in skipped] == [(1, "note")]
    with pytest.raises(LineError, match="line 2"):
        parse("a x=1\nb x=1 notatime", "ns", 0.0)
