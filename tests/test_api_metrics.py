"""The metric API over real HTTP: register, record, query, latest, and every rule a push can break."""

from __future__ import annotations

import time

import pytest

from dashboard_app.runtime import Runtime
from tests.servers import quiet_settings, serving

ORDERS = {
    "name": "shop_orders_total",
    "type": "counter",
    "help": "Orders placed",
    "unit": "",
    "labels": ["region"],
    "category": "business",
}


def register(pb, definition=ORDERS):
    response = pb.call("POST", "/metrics/custom/register", definition)
    assert response.status_code in (200, 201), response.text
    return response


def record(pb, *samples):
    return pb.call("POST", "/metrics/custom/record", {"samples": list(samples)})


def latest(pb, selector):
    response = pb.call("GET", "/metrics/latest", params={"query": selector})
    assert response.status_code == 200
    return {tuple(sorted(s["labels"].items())): s["value"] for s in response.json()["series"]}


def error(response, status, field=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == status and body["error"]
    if field is not None:
        assert body.get("field") == field
    return body["error"]


def test_register_answers_201_then_200_for_the_same_definition(pulseboard):
    first = pulseboard.call("POST", "/metrics/custom/register", ORDERS)
    assert first.status_code == 201 and first.json()["metric"]["name"] == "shop_orders_total"
    assert pulseboard.call("POST", "/metrics/custom/register", ORDERS).status_code == 200
    listed = pulseboard.call("GET", "/metrics/custom/list").json()["metrics"]
    assert any(m["name"] == "shop_orders_total" and m["labels"] == ["region"] for m in listed)


@pytest.mark.parametrize(
    "change, status, field",
    [
        ({"type": "gauge"}, 409, "type"),
        ({"labels": ["country"]}, 409, "labels"),
    ],
)
def test_a_name_keeps_its_type_and_labels(pulseboard, change, status, field):
    register(pulseboard)
    error(pulseboard.call("POST", "/metrics/custom/register", {**ORDERS, **change}), status, field)


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"name": "2orders"}, "name", "[a-zA-Z_:]"),
        ({"name": "orders-total"}, "name", "must be a string matching"),
        ({"type": "meter"}, "type", "gauge, counter, histogram, summary"),
        ({"labels": ["bad-label"]}, "labels", "must match"),
        ({"labels": ["__reserved"]}, "labels", "not start with __"),
        ({"labels": ["a", "a"]}, "labels", "repeat"),
        ({"category": "sales"}, "category", "business, rag, application, custom"),
        ({"unit": "Furlongs per fortnight"}, "unit", "celsius"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_registration_rules_name_the_field_and_what_is_allowed(pulseboard, change, field, words):
    message = error(pulseboard.call("POST", "/metrics/custom/register", {**ORDERS, **change}), 400, field)
    assert words in message
    assert "shop_orders_total" not in [
        m["name"] for m in pulseboard.call("GET", "/metrics/custom/list").json()["metrics"]
    ]


def test_a_counter_keeps_the_running_total_of_its_increments(pulseboard):
    register(pulseboard)
    now = time.time()
    assert record(
        pulseboard,
        {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 3, "timestamp": now - 2},
    ).ok
    assert record(
        pulseboard,
        {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 2, "timestamp": now - 1},
        {"name": "shop_orders_total", "labels": {"region": "us"}, "value": 1},
    ).ok
    assert latest(pulseboard, "shop_orders_total") == {(("region", "eu"),): 5.0, (("region", "us"),): 1.0}


def test_a_histogram_keeps_observations_and_running_count_and_sum(pulseboard):
    register(pulseboard, {"name": "checkout_seconds", "type": "histogram", "unit": "seconds"})
    samples = [{"name": "checkout_seconds", "value": v} for v in (0.1, 0.2, 0.3, 0.4)]
    assert record(pulseboard, *samples).json()["stored"] == 12  # 4 observations, 4 counts, 4 sums
    assert latest(pulseboard, "checkout_seconds_count") == {(): 4.0}
    assert latest(pulseboard, "checkout_seconds_sum")[()] == pytest.approx(1.0)
    now = time.time()
    points = pulseboard.call(
        "POST",
        "/metrics/query",
        {"query": "checkout_seconds", "start": now + 1, "end": now + 1, "step": 120, "aggregation": "p50"},
    ).json()["series"][0]["points"]
    assert points[0][1] == pytest.approx(0.25)


def test_query_answers_the_documented_shape(pulseboard):
    register(pulseboard)
    t0 = 1_764_064_800.0 + (time.time() - 1_764_064_800.0) // 60 * 60 - 600  # ten minutes ago, whole minute
    for i in range(10):
        assert record(
            pulseboard,
            {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 1, "timestamp": t0 + 60 * i},
        ).ok
    body = pulseboard.call(
        "POST",
        "/metrics/query",
        {
            "query": 'shop_orders_total{region="eu"}',
            "start": t0,
            "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 540)),
            "step": 60,
            "aggregation": "last",
        },
    ).json()
    assert body["ok"] is True
    [series] = body["series"]
    assert series["name"] == "shop_orders_total" and series["labels"] == {"region": "eu"}
    assert series["points"] == [[int(t0 + 60 * i), float(i + 1)] for i in range(10)]


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"step": 0}, "step", "positive"),
        ({"step": -5}, "step", "positive"),
        ({"start": 2000, "end": 1000}, "end", "before start"),
        ({"start": 0, "end": 12_000, "step": 1}, "step", "at most 11,000"),
        ({"aggregation": "median"}, "aggregation", "avg, min, max"),
        ({"query": "shop_orders_total{region=eu}"}, "query", "label matching"),
        ({"query": ""}, "query", "selector"),
        ({"start": "yesterday"}, "start", "RFC 3339"),
    ],
)
def test_query_rejects_what_it_cannot_answer(pulseboard, change, field, words):
    body = {"query": "shop_orders_total", "start": 1000, "end": 2000, "step": 10, **change}
    assert words in error(pulseboard.call("POST", "/metrics/query", body), 400, field)


GOOD = {"name": "shop_orders_total", "labels": {"region": "eu"}, "value": 1}


@pytest.mark.parametrize(
    "bad, status, field, words",
    [
        ({"name": "never_registered"}, 404, "samples[1].name", "register it first"),
        ({"value": -1}, 400, "samples[1].value", "must not be negative"),
        ({"value": "7"}, 400, "samples[1].value", "finite number"),
        ({"value": True}, 400, "samples[1].value", "finite number"),
        ({"labels": {}}, 400, "samples[1].labels", "missing region"),
        ({"labels": {"region": "eu", "shop": "x"}}, 400, "samples[1].labels", "not registered: shop"),
        ({"labels": {"region": ["eu"]}}, 400, "samples[1].labels.region", "string"),
        ({"timestamp": time.time() + 3600}, 400, "samples[1].timestamp", "at most 10 minutes ahead"),
        (
            {"timestamp": 1000.0},
            400,
            "samples[1].timestamp",
            "1970-01-01T00:16:40Z is older than the history",
        ),
        ({"timestamp": "now"}, 400, "samples[1].timestamp", "Unix seconds"),
        ({"colour": "red"}, 400, "samples[1].colour", "unknown field"),
    ],
)
def test_a_bad_sample_stores_nothing_of_its_request(pulseboard, bad, status, field, words):
    register(pulseboard)
    assert record(pulseboard, GOOD).ok
    before = pulseboard.runtime.store.appended
    message = error(record(pulseboard, {**GOOD, "labels": {"region": "us"}}, {**GOOD, **bad}), status, field)
    assert words in message
    assert pulseboard.runtime.store.appended == before
    assert latest(pulseboard, "shop_orders_total") == {(("region", "eu"),): 1.0}


def test_a_counters_increments_must_arrive_in_time_order(pulseboard):
    register(pulseboard)
    now = time.time()
    assert record(pulseboard, {**GOOD, "timestamp": now}).ok
    message = error(record(pulseboard, {**GOOD, "timestamp": now - 10}), 400, "samples[0].timestamp")
    assert "time order" in message and "running total" in message


def test_a_gauges_history_may_arrive_late_and_is_stored_where_it_belongs(pulseboard):
    body = {"name": "shop_queue_depth", "type": "gauge", "help": "Orders waiting."}
    assert pulseboard.call("POST", "/metrics/custom/register", body).status_code == 201
    now = time.time()
    assert record(pulseboard, {"name": "shop_queue_depth", "value": 9, "timestamp": now}).ok
    start = now - 20 * 3600  # older than the raw tier (15 min in development), inside the day of minutes
    history = [{"name": "shop_queue_depth", "value": i % 5, "timestamp": start + i * 60} for i in range(1000)]
    assert record(pulseboard, *history).ok
    body = {
        "query": "shop_queue_depth",
        "start": now - 86400,
        "end": now,
        "step": 600,
        "aggregation": "count",
    }
    points = pulseboard.call("POST", "/metrics/query", body).json()["series"][0]["points"]
    assert sum(v for _, v in points) == 1001  # each sample once
    body = {**body, "aggregation": "max", "start": start, "end": start + 3600, "step": 3600}
    points = pulseboard.call("POST", "/metrics/query", body).json()["series"][0]["points"]
    assert max(v for _, v in points) == 4
    latest_value = pulseboard.call("GET", "/metrics/latest", params={"query": "shop_queue_depth"}).json()
    assert latest_value["series"][0]["value"] == 9  # history does not replace the newest value


def test_pushed_gauges_are_stored_whatever_path_their_body_takes(pulseboard):
    """A push of known gauges goes to the store in columns; a label that is an integer past 64 bits
    keeps its digits (its body is read by Python's json); both read back as sent."""
    body = {"name": "shop_stock_level", "type": "gauge", "help": "Items in stock.", "labels": ["sku"]}
    assert pulseboard.call("POST", "/metrics/custom/register", body).status_code == 201
    now = time.time()
    first = [
        {"name": "shop_stock_level", "labels": {"sku": f"s{i}"}, "value": i, "timestamp": now - 5}
        for i in range(3)
    ]
    assert record(pulseboard, *first).json()["stored"] == 3  # labels checked one by one, then known
    again = [{**sample, "value": sample["value"] + 10, "timestamp": now - 4} for sample in first]
    assert record(pulseboard, *again).json()["stored"] == 3  # known labels: the columns' path
    huge = {
        "name": "shop_stock_level",
        "labels": {"sku": 18446744073709551617},
        "value": 1.5,
        "timestamp": now,
    }
    assert record(pulseboard, huge).json()["stored"] == 1
    assert latest(pulseboard, "shop_stock_level") == {
        (("sku", "s0"),): 10,
        (("sku", "s1"),): 11,
        (("sku", "s2"),): 12,
        (("sku", "18446744073709551617"),): 1.5,
    }


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(pulseboard, constant):
    register(pulseboard)
    raw = (
        f'{{"samples": [{{"name": "shop_orders_total", "labels": {{"region": "eu"}}, "value": {constant}}}]}}'
    )
    assert "finite" in error(pulseboard.call("POST", "/metrics/custom/record", raw=raw.encode()), 400, "body")
    assert latest(pulseboard, "shop_orders_total") == {}


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"{not json", "not valid JSON"),
        (b"", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'{"samples": 3}', "list"),
    ],
)
def test_malformed_bodies_get_a_400(pulseboard, raw, words):
    assert words in error(pulseboard.call("POST", "/metrics/custom/record", raw=raw), 400)


def test_caps_on_body_samples_and_series(tmp_path):
    settings = quiet_settings(ingest__max_body="2048", ingest__sample_cap="5", ingest__series_cap="3")
    runtime = Runtime(settings, tmp_path)
    with serving(runtime) as pb:
        register(pb)
        big = {"samples": [{**GOOD, "labels": {"region": "x" * 900}} for _ in range(3)]}
        error(pb.call("POST", "/metrics/custom/record", big), 413)
        many = [{**GOOD, "labels": {"region": "eu"}} for _ in range(6)]
        assert "at most 5" in error(record(pb, *many), 413, "samples")
        regions = [{**GOOD, "labels": {"region": r}} for r in ("a", "b", "c", "d")]
        assert "cap of 3" in error(record(pb, *regions), 422, "labels")
        assert latest(pb, "shop_orders_total") == {}
        assert record(pb, *regions[:3]).ok  # within the cap
    runtime.archive.close()


def test_registered_metrics_survive_a_restart(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        register(pb)
    runtime.stop()
    again = Runtime(quiet_settings(), tmp_path)
    with serving(again) as pb:
        assert record(pb, GOOD).ok  # no need to register again
        assert pb.call("POST", "/metrics/custom/register", {**ORDERS, "type": "gauge"}).status_code == 409
    again.stop()


def test_health_stats_and_unknown_paths(pulseboard):
    health = pulseboard.call("GET", "/metrics/health").json()
    assert health["ok"] and health["status"] in ("healthy", "degraded")
    stats = pulseboard.call("GET", "/metrics/stats").json()
    assert stats["tiers"][0] == {"step": 0, "retention": 900.0}
    assert "openapi" in error(pulseboard.call("GET", "/nothing/here"), 404)
    assert "not allowed" in error(pulseboard.call("DELETE", "/metrics/stats"), 405)
