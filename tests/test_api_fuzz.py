"""Random bodies and paths never make the API fail with a 5xx: every refusal is a 4xx with a reason."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
NAMES = st.sampled_from(["shop_orders_total", "pulseboard_business_sessions_total", "x", "", "1bad"])
SAMPLE = st.fixed_dictionaries(
    {"name": NAMES},
    optional={
        "labels": st.dictionaries(st.sampled_from(["region", "type", "__x", ""]), JSON, max_size=3),
        "value": JSON,
        "timestamp": JSON,
    },
)
POSTS = [
    "/metrics/custom/register",
    "/metrics/custom/record",
    "/metrics/query",
    "/dashboards/create",
    "/dashboards/operations/connect",
    "/alerts/rules",
    "/alerts/rules/backtest",
]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["ok"] is False and body["status"] == response.status_code and body["error"]


@FUZZ
@given(path=st.sampled_from(POSTS), body=JSON)
def test_any_json_body_gets_a_reasoned_answer(pulseboard, path, body):
    check(pulseboard.call("POST", path, raw=json.dumps(body).encode()))


@FUZZ
@given(samples=st.lists(SAMPLE, max_size=5))
def test_any_batch_of_samples_gets_a_reasoned_answer(pulseboard, samples):
    check(pulseboard.call("POST", "/metrics/custom/record", {"samples": samples}))


@FUZZ
@given(
    query=st.text(max_size=40) | st.sampled_from(['pulseboard_business_sessions_total{x=~"("}', "up"]),
    start=JSON,
    end=JSON,
    step=JSON,
    aggregation=st.sampled_from(["avg", "p99", "rate", "bogus"]) | st.text(max_size=5),
)
def test_any_query_gets_a_reasoned_answer(pulseboard, query, start, end, step, aggregation):
    body = {"query": query, "start": start, "end": end, "step": step, "aggregation": aggregation}
    check(pulseboard.call("POST", "/metrics/query", body))


@FUZZ
@given(
    segment=st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=20)
)
def test_any_dashboard_or_connection_id_gets_a_reasoned_answer(pulseboard, segment):
    for method, path in (
        ("GET", f"/dashboards/{segment}"),
        ("DELETE", f"/dashboards/{segment}"),
        ("PUT", f"/dashboards/{segment}"),
        ("DELETE", f"/dashboards/connections/{segment}"),
    ):
        check(pulseboard.call(method, path, raw=b"{}"))


PARAM = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", "nan", "inf", "1e308"]),
)


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/analysis/performance",
            "/analysis/trends",
            "/analysis/anomalies",
            "/metrics/export.csv",
            "/metrics/latest",
        ]
    ),
    params=st.dictionaries(
        st.sampled_from(
            ["query", "start", "end", "step", "horizon", "threshold", "aggregation", "agg", "range"]
        ),
        PARAM,
        max_size=6,
    ),
)
def test_any_query_string_gets_a_reasoned_answer(pulseboard, path, params):
    check(pulseboard.call("GET", path, params=params))
