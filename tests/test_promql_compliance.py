"""The PromQL compliance suite the Prometheus project publishes (prometheus/compliance,
``promql/promql-test-queries.yml``, in ``tests/data``), run as its tester runs it: every query, with every
variant, asked as a range query of Pulseboard and of a real Prometheus holding the same samples, and the
answers compared series by series, point by point (values within 1e-5 of each other, NaN equal to NaN).
Instant queries at the range's end are compared too."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import pytest
import requests
import yaml

from dashboard_app.runtime import Runtime
from tests import demo_service
from tests.servers import prometheus_server, quiet_settings, serving

SUITE = Path(__file__).parent / "data" / "promql-test-queries.yml"
VARIANTS = {  # the tester's own table (promql/testcases/expand.go)
    "range": ["1s", "15s", "1m", "5m", "15m", "1h"],
    "offset": ["1m", "5m", "10m"],
    "simpleAggrOp": ["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
    "simpleTimeAggrOp": ["sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last"],
    "topBottomOp": ["topk", "bottomk"],
    "quantile": ["-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"],
    "arithBinOp": ["+", "-", "*", "/", "%", "^"],
    "compBinOp": ["==", "!=", "<", ">", "<=", ">="],
    "binOp": ["+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="],
    "simpleMathFunc": ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"],
    "extrapolatedRateFunc": ["delta", "rate", "increase"],
    "clampFunc": ["clamp_min", "clamp_max"],
    "instantRateFunc": ["idelta", "irate"],
    "dateFunc": ["day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"],
}
FRACTION = 0.00001  # the tester's default tolerance


def expand() -> list[tuple[str, bool]]:
    """Every (query, should_fail) of the suite, its templates filled with every variant."""
    cases = []
    for case in yaml.safe_load(SUITE.read_text())["test_cases"]:
        names = case.get("variant_args", [])
        for values in itertools.product(*(VARIANTS[n] for n in names)):
            query = case["query"]
            for name, value in zip(names, values):
                query = re.sub(r"\{\{\s*\." + name + r"\s*\}\}", value, query)
            cases.append((query, bool(case.get("should_fail"))))
    return cases


# Beyond the published list: the rest of Prometheus 2.42's functions, operators and modifiers. ``AT``
# stands for a time inside the data. Whether each must fail is what Prometheus says.
EXTRA = [
    "demo_memory_usage_bytes @ start()",
    "demo_memory_usage_bytes @ end()",
    "demo_num_cpus @ AT",
    "demo_num_cpus offset 1m @ AT",
    "rate(demo_cpu_usage_seconds_total[5m] @ end())",
    "rate(demo_cpu_usage_seconds_total[5m] @ AT offset 2m)",
    "sum_over_time(demo_num_cpus[5m:1m] @ end())",
    "-demo_num_cpus @ start()",
    "time() - timestamp(demo_num_cpus @ AT)",
    "max_over_time(deriv(demo_disk_usage_bytes[5m])[10m:30s])",
    "quantile_over_time(0.5, rate(demo_cpu_usage_seconds_total[1m])[5m:])",
    "min_over_time(demo_memory_usage_bytes[2m:15s] offset 1m)",
    "rate(demo_cpu_usage_seconds_total[1m:5s])",
    "last_over_time(demo_intermittent_metric[1m])",
    "timestamp(demo_intermittent_metric)",
    "present_over_time(demo_intermittent_metric[1m])",
    "absent_over_time(demo_intermittent_metric[1m])",
    'absent_over_time(nonexistent_metric_name{job="demo", instance=~"x"}[5m])',
    'absent(nonexistent_metric_name{job="demo", type="a"})',
    'label_join(demo_num_cpus, "x", ",", "instance", "job", "nonexistent")',
    'count_values by (instance) ("cpus", demo_num_cpus)',
    'count_values without (instance) ("value", demo_memory_usage_bytes > 6e9)',
    "sort(demo_memory_usage_bytes)",
    "sort_desc(demo_memory_usage_bytes)",
    "holt_winters(demo_disk_usage_bytes[10m], 0.5, 0.5)",
    "holt_winters(demo_disk_usage_bytes[10m], 0, 0.5)",
    *(
        f"{f}(demo_num_cpus / 100)"
        for f in (
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "asinh",
            "atanh",
            "deg",
            "rad",
        )
    ),
    "acosh(demo_num_cpus)",
    "pi() * 2",
    "demo_num_cpus atan2 demo_num_cpus",
    "sgn(demo_disk_usage_bytes - 3e9)",
    "group by (instance) (demo_memory_usage_bytes)",
    "stddev_over_time(demo_memory_usage_bytes[5m])",
    "demo_memory_usage_bytes and on(instance) demo_num_cpus > 4",
    "demo_memory_usage_bytes unless on(instance) demo_num_cpus > 4",
    "demo_num_cpus > 4 or demo_disk_usage_bytes",
    "scalar(sum(demo_num_cpus)) * demo_num_cpus",
    "topk by (instance) (1, demo_memory_usage_bytes)",
    "round(demo_memory_usage_bytes, 1000)",
    "histogram_quantile(0.9, sum by (le) (rate(demo_api_request_duration_seconds_bucket[5m])))",
    "day_of_year(demo_batch_last_success_timestamp_seconds)",
]
CASES = expand()
HISTORY_MS = 100 * 60_000


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(Pulseboard URL, Prometheus URL, end of the data in seconds), both holding the same 100 minutes."""
    tmp = tmp_path_factory.mktemp("compliance")
    now_ms = int(time.time() * 1000) // 60_000 * 60_000
    series = demo_service.samples(now_ms - HISTORY_MS, now_ms)
    runtime = Runtime(quiet_settings(store__raw__retention="3h"), tmp / "data")
    try:
        with (
            serving(runtime) as pb,
            prometheus_server(tmp, {}, flags=("--web.enable-remote-write-receiver",)) as prom,
        ):
            demo_service.write(prom + "/api/v1/write", series)
            demo_service.write(pb.url + "/api/v1/write", series)
            yield pb.url, prom, now_ms / 1000
    finally:
        runtime.archive.close()


def ask(url: str, path: str, **params) -> tuple[bool, dict | str]:
    answer = requests.get(url + path, params=params, timeout=30)
    body = answer.json()
    if body.get("status") != "success":
        return False, f"{answer.status_code} {body.get('errorType')}: {body.get('error')}"
    return True, body["data"]


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    return abs(x - y) <= FRACTION * min(abs(x), abs(y))


def differences(theirs: dict, ours: dict) -> list[str]:
    """What differs between two answers of the same query (empty when they agree)."""
    if theirs["resultType"] != ours["resultType"]:
        return [f"result type {ours['resultType']}, Prometheus {theirs['resultType']}"]
    if theirs["resultType"] in ("scalar", "string"):
        t, o = theirs["result"], ours["result"]
        return [] if t[0] == o[0] and _close(t[1], o[1]) else [f"{o} where Prometheus has {t}"]
    key = "values" if theirs["resultType"] == "matrix" else "value"
    mine = {tuple(sorted(s["metric"].items())): s[key] for s in ours["result"]}
    found = []
    for s in theirs["result"]:
        labels = tuple(sorted(s["metric"].items()))
        if labels not in mine:
            found.append(f"missing series {dict(labels)}")
            continue
        points, expected = mine.pop(labels), s[key]
        if key == "value":
            points, expected = [points], [expected]
        if [p[0] for p in points] != [p[0] for p in expected]:
            found.append(
                f"{dict(labels)}: {len(points)} points at other times than Prometheus' {len(expected)}"
            )
            continue
        bad = [(p[0], p[1], e[1]) for p, e in zip(points, expected) if not _close(e[1], p[1])]
        if bad:
            found.append(
                f"{dict(labels)}: {len(bad)} values differ, first at {bad[0][0]}: {bad[0][1]} vs {bad[0][2]}"
            )
    found += [f"extra series {dict(labels)}" for labels in mine]
    return found


def compare(both, query: str, should_fail: bool | None) -> None:
    """Ask both servers as a range query and an instant one; Pulseboard must answer as Prometheus."""
    pb, prom, end = both
    query = query.replace("AT", f"{end - 300:.3f}")
    window = {"start": end - 60 - 600, "end": end - 60, "step": 10}
    for path, params in (("/api/v1/query_range", window), ("/api/v1/query", {"time": end - 60})):
        theirs_ok, theirs = ask(prom, path, query=query, **params)
        ours_ok, ours = ask(pb, path, query=query, **params)
        if should_fail is not None:
            assert theirs_ok != should_fail, f"Prometheus: {theirs}"
        if not theirs_ok:
            assert not ours_ok, f"{path}: Pulseboard answered what Prometheus refuses: {ours}"
            continue
        assert ours_ok, f"{path}: {ours}"
        found = differences(theirs, ours)
        assert not found, f"{path}: " + "; ".join(found[:5])
        if query.startswith("sort") and theirs["resultType"] == "vector":
            order = [s["metric"] for s in theirs["result"]]
            assert [s["metric"] for s in ours["result"]] == order, "sorted in another order"


@pytest.mark.parametrize("query, should_fail", CASES, ids=[q for q, _ in CASES])
def test_each_query_of_the_suite_answers_as_prometheus_does(both, query, should_fail):
    compare(both, query, should_fail)


@pytest.mark.parametrize("query", EXTRA)
def test_every_other_function_and_modifier_answers_as_prometheus_does(both, query):
    compare(both, query, None)


def test_the_suite_is_the_whole_published_list():
    assert len(CASES) == 539
