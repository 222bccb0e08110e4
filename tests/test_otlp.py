"""OTLP/HTTP in: the OpenTelemetry Python SDK and its OTLP/HTTP exporter sending to Pulseboard."""

from __future__ import annotations

import gzip

import pytest
import requests
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from dashboard_app.access.secrets import Secrets
from dashboard_app.runtime import Runtime
from ingest.otlp import metric_name
from tests.servers import api_key, latest_by_labels, logged_in, quiet_settings, serving

SECRETS = Secrets("s" * 48, "correct-horse-battery")
SERVICE = {"service.name": "shop", "service.namespace": "retail", "service.instance.id": "web-1"}


@pytest.fixture
def secured(tmp_path):
    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        pb.admin = logged_in(pb.url, "admin", SECRETS.admin_password)
        pb.key = api_key(pb.admin, pb.url, ["ingest"])
        yield pb
    runtime.archive.close()


def latest(pb, selector: str) -> dict:
    return latest_by_labels(pb.admin, pb.url, selector)


def provider(pb, temporality=None) -> tuple[MeterProvider, PeriodicExportingMetricReader]:
    exporter = OTLPMetricExporter(
        endpoint=pb.url + "/v1/metrics",
        headers={"Authorization": f"Bearer {pb.key}"},
        preferred_temporality=temporality or {},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(resource=Resource.create(SERVICE), metric_readers=[reader]), reader


def test_the_sdk_sends_a_counter_a_gauge_and_a_histogram(secured):
    meters, reader = provider(secured)
    meter = meters.get_meter("shop")
    meter.create_counter("shop.orders", unit="{order}", description="Orders placed").add(3, {"region": "eu"})
    meter.create_gauge("room.temperature", unit="Cel").set(21.5, {"room": "lab"})
    latency = meter.create_histogram("http.server.duration", unit="s")
    for seconds in (0.2, 0.7, 3.0):
        latency.record(seconds, {"route": "/cart"})
    assert reader.force_flush()
    meters.shutdown()
    job = (("instance", "web-1"), ("job", "retail/shop"))
    assert latest(secured, "shop_orders_total") == {(*job, ("region", "eu")): 3.0}
    assert latest(secured, "room_temperature_celsius") == {
        (("instance", "web-1"), ("job", "retail/shop"), ("room", "lab")): 21.5
    }
    route = (("instance", "web-1"), ("job", "retail/shop"), ("route", "/cart"))
    assert latest(secured, "http_server_duration_seconds_count") == {route: 3.0}
    assert latest(secured, "http_server_duration_seconds_sum") == {route: pytest.approx(3.9)}
    buckets = latest(secured, "http_server_duration_seconds_bucket")
    by_le = {dict(labels)["le"]: value for labels, value in buckets.items()}
    # The SDK's default bounds (0, 5, 10, ... 10000), made cumulative as Prometheus has them.
    assert by_le["0.0"] == 0 and by_le["5.0"] == 3 and by_le["+Inf"] == 3
    counts = [by_le[le] for le in sorted(by_le, key=float)]
    assert counts == sorted(counts) and len(counts) == 16
    store = secured.runtime.store
    assert store.specs["shop_orders_total"].type == "counter"
    assert store.specs["room_temperature_celsius"].type == "gauge"


def test_delta_sums_are_folded_into_running_totals(secured):
    meters, reader = provider(secured, {Counter: AggregationTemporality.DELTA})
    jobs = meters.get_meter("worker").create_counter("jobs.done")
    jobs.add(3)
    assert reader.force_flush()
    jobs.add(2)
    assert reader.force_flush()
    meters.shutdown()
    assert list(latest(secured, "jobs_done_total").values()) == [5.0]


def test_json_and_gzip_bodies_are_taken(secured):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "batch"}}]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "queue.depth",
                                "unit": "1",
                                "gauge": {"dataPoints": [{"asInt": "7", "timeUnixNano": _now_ns()}]},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    message = json_format.ParseDict(body, ExportMetricsServiceRequest())
    headers = {"Authorization": f"Bearer {secured.key}", "Content-Type": "application/json"}
    answer = requests.post(
        secured.url + "/v1/metrics", data=json_format.MessageToJson(message), headers=headers
    )
    assert answer.status_code == 200 and answer.json() == {}
    assert latest(secured, "queue_depth_ratio") == {(("job", "batch"),): 7.0}
    packed = {**headers, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    message.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0].as_int = 9
    answer = requests.post(
        secured.url + "/v1/metrics", data=gzip.compress(message.SerializeToString()), headers=packed
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/x-protobuf"
    assert latest(secured, "queue_depth_ratio") == {(("job", "batch"),): 9.0}


def _now_ns() -> str:
    import time

    return str(int(time.time() * 1e9))


@pytest.mark.parametrize(
    "data, content_type, status",
    [
        (b"\x0a\xff\xff\xff", "application/x-protobuf", 400),  # truncated protobuf
        (b"{not json", "application/json", 400),
        (b"queue_depth 7", "text/plain", 415),
    ],
)
def test_bad_bodies_are_refused_and_store_nothing(secured, data, content_type, status):
    headers = {"Authorization": f"Bearer {secured.key}", "Content-Type": content_type}
    answer = requests.post(secured.url + "/v1/metrics", data=data, headers=headers, timeout=10)
    assert answer.status_code == status and answer.json()["error"]
    assert requests.post(secured.url + "/v1/metrics", data=data, timeout=10).status_code == 401


@pytest.mark.parametrize(
    "name, unit, kind, counter, expected",
    [
        ("http.server.duration", "s", "histogram", False, "http_server_duration_seconds"),
        ("system.network.io", "By", "counter", True, "system_network_io_bytes_total"),
        ("net.rate", "By/s", "gauge", False, "net_rate_bytes_per_second"),
        ("cpu.utilization", "1", "gauge", False, "cpu_utilization_ratio"),
        ("requests", "{request}", "counter", True, "requests_total"),
        ("disk.usage_bytes", "By", "gauge", False, "disk_usage_bytes"),
    ],
)
def test_names_follow_the_opentelemetry_to_prometheus_rules(name, unit, kind, counter, expected):
    assert metric_name(name, unit, kind, counter) == expected
