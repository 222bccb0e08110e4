"""Prometheus both ways: promtool accepts /metrics, a real Prometheus scrapes it, Pulseboard scrapes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.openmetrics import parser as openmetrics_parser

from dashboard_app.runtime import Runtime
from layouts.validation import ConfigError
from tests.servers import free_port, prometheus_query, prometheus_server, quiet_settings

PROMTOOL = shutil.which("promtool")


def push_examples(pb) -> None:
    """Register and record one metric of every type."""
    for name, kind, labels in (
        ("shop_orders_total", "counter", ["region"]),
        ("shop_queue_depth", "gauge", []),
        ("shop_checkout_seconds", "histogram", []),
        ("shop_search_seconds", "summary", []),
    ):
        body = {"name": name, "type": kind, "help": f"{name} help", "labels": labels}
        assert pb.call("POST", "/metrics/custom/register", body).status_code == 201
    samples = [
        {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 3},
        {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 2},
        {"name": "shop_queue_depth", "value": 21.5},
        {"name": "shop_checkout_seconds", "value": 0.25},
        {"name": "shop_search_seconds", "value": 0.5},
    ]
    assert pb.call("POST", "/metrics/custom/record", {"samples": samples}).ok


def test_metrics_exposition_passes_promtool(pulseboard):
    assert PROMTOOL, "promtool is installed by `make test` (Debian package prometheus)"
    push_examples(pulseboard)
    runtime = pulseboard.runtime
    for job in ("system", "disk_usage", "self"):
        runtime.scheduler.run_once(job)
    text = requests.get(pulseboard.url + "/metrics", timeout=10).text
    assert 'shop_orders_total{region="eu"} 5.0' in text
    assert "# TYPE shop_checkout_seconds histogram" in text and "shop_checkout_seconds_count 1.0" in text
    assert "pulseboard_system_cpu_core_usage_ratio" in text or "pulseboard_system_memory_used_bytes" in text
    assert "pulseboard_http_requests_total" in text  # Pulseboard's own metrics
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    same = pulseboard.call("GET", "/metrics/prometheus")
    assert same.headers["Content-Type"].startswith("text/plain") and "shop_queue_depth 21.5" in same.text


def test_a_real_prometheus_scrapes_a_pushed_value(pulseboard, tmp_path):
    push_examples(pulseboard)
    target = pulseboard.url.removeprefix("http://")
    with prometheus_server(tmp_path, {target: target}, job="pulseboard") as url:
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline and not result:
            result = prometheus_query(url, 'shop_orders_total{region="eu"}')
            time.sleep(0.5)
        assert result, "Prometheus did not scrape Pulseboard within 60 s"
        assert float(result[0]["value"][1]) == 5.0
        assert float(prometheus_query(url, "shop_queue_depth")[0]["value"][1]) == 21.5
        up = prometheus_query(url, 'up{job="pulseboard"}')
        assert float(up[0]["value"][1]) == 1.0  # the whole exposition parsed


@pytest.fixture
def exporter():
    """A real prometheus_client exporter on a loopback port."""
    registry = CollectorRegistry()
    jobs = Counter("jobs_done", "Jobs done.", ["queue"], registry=registry)
    jobs.labels("mail").inc(7)
    Gauge("queue_length", "Jobs waiting.", registry=registry).set(3)
    Histogram("job_seconds", "Job time.", registry=registry).observe(0.4)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    server.registry = registry
    yield f"http://127.0.0.1:{port}/metrics", server
    server.shutdown()
    server.server_close()
    thread.join(5)


def scraping(tmp_path, url: str, **extra) -> Runtime:
    target = {"url": url, "job": "worker", "interval": "15s", "labels": {"team": "ops"}, **extra}
    settings = quiet_settings(scrape=json.dumps([target]))
    return Runtime(settings, tmp_path)


def test_a_scrape_target_lands_in_the_store_with_job_and_instance(tmp_path, exporter):
    url, server = exporter
    runtime = scraping(tmp_path, url)
    [scraper] = runtime.targets
    runtime.scheduler.run_once(scraper.name)
    store = runtime.store
    instance = url.split("/")[2]
    [jobs] = store.latest(["jobs_done_total"])
    assert jobs[0].label_dict == {"queue": "mail", "job": "worker", "instance": instance, "team": "ops"}
    assert jobs[2] == 7.0
    assert store.specs["jobs_done_total"].type == "counter"
    assert store.latest(["job_seconds_count"])[0][2] == 1.0
    assert store.latest(["up"])[0][2] == 1.0

    server.shutdown()  # the target goes away: up drops to 0, the other collectors go on
    server.server_close()
    runtime.scheduler.run_once(scraper.name)
    runtime.scheduler.run_once("system")
    assert store.latest(["up"])[0][2] == 0.0
    assert scraper.last_error
    health = {j["name"]: j for j in runtime.scheduler.health()}
    assert health["system"]["last_success"] is not None
    runtime.archive.close()


def test_a_response_over_the_size_cap_is_refused(tmp_path, exporter):
    url, server = exporter
    wide = Gauge("wide", "Many series.", ["n"], registry=server.registry)
    for n in range(100):
        wide.labels(str(n)).set(n)
    runtime = scraping(tmp_path, url, max_bytes=1024)
    [scraper] = runtime.targets
    runtime.scheduler.run_once(scraper.name)
    assert runtime.store.latest(["up"])[0][2] == 0.0
    assert "cap" in scraper.last_error
    assert not runtime.store.series("jobs_done_total")
    runtime.archive.close()


def test_a_bad_scrape_target_in_the_settings_names_the_field():
    with pytest.raises(ConfigError, match=r"scrape\.0\.url"):
        quiet_settings(scrape=json.dumps([{"url": "ftp://example"}]))


def test_openmetrics_when_the_scraper_asks_and_the_process_metrics(pulseboard):
    push_examples(pulseboard)
    pulseboard.runtime.scheduler.run_once("self")
    accept = {"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"}
    answer = requests.get(pulseboard.url + "/metrics", headers=accept, timeout=10)
    assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_parser.text_string_to_metric_families(answer.text)}
    assert families["shop_orders"].type == "counter"
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    plain = requests.get(pulseboard.url + "/metrics", timeout=10).text
    assert "process_cpu_seconds_total" in plain and "# EOF" not in plain


def test_a_real_prometheus_takes_quantiles_of_pulseboards_request_durations(pulseboard, tmp_path):
    target = pulseboard.url.removeprefix("http://")
    with prometheus_server(tmp_path, {target: target}, job="pulseboard") as url:
        rates = "rate(pulseboard_http_request_duration_seconds_bucket[20s])"
        expr = f"histogram_quantile(0.9, sum by (le) ({rates}))"
        deadline = time.monotonic() + 90
        result = []
        while time.monotonic() < deadline:
            for _ in range(20):  # requests of known routes, so their durations are observed
                requests.get(pulseboard.url + "/api/v1/monitoring/version", timeout=5)
            pulseboard.runtime.scheduler.run_once("self")  # the instruments into the store, as each tick does
            result = prometheus_query(url, expr)
            if result and result[0]["value"][1] not in ("NaN", "+Inf"):
                break
            time.sleep(1)
        assert result, "Prometheus computed no quantile from Pulseboard's buckets within 90 s"
        value = float(result[0]["value"][1])
        assert 0 < value <= 10  # seconds: within the buckets, not the +Inf of a histogram without them
        route = '{route="/api/v1/monitoring/version"}'
        buckets = prometheus_query(url, f"count(pulseboard_http_request_duration_seconds_bucket{route})")
        assert float(buckets[0]["value"][1]) == 15  # Prometheus' default buckets, +Inf included
