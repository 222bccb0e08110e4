"""Pulseboard's selectors and aggregations in PromQL: exact where they can be, refused where not."""

from __future__ import annotations

import pytest

from collectors.aggregator import QueryError
from collectors.selector import parse_selector
from dashboard_app.sources import promql
from layouts.schema import Dashboard


def translate(expr: str, agg: str, kind: str | None = "gauge", span: float = 60, scrape: float = 15) -> str:
    return promql.over_window(parse_selector(expr), agg, span, kind, scrape)


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", 'avg_over_time(cpu{host="a"}[60000ms])'),
        ("max", 'max_over_time(cpu{host="a"}[60000ms])'),
        ("last", 'last_over_time(cpu{host="a"}[60000ms])'),
        ("count", 'count_over_time(cpu{host="a"}[60000ms])'),
        ("p95", 'quantile_over_time(0.95, cpu{host="a"}[60000ms])'),
        ("rate", 'rate(cpu{host="a"}[60000ms])'),
    ],
)
def test_gauges_and_counters_read_each_bucket_over_time(agg, expected):
    assert translate('cpu{host="a"}', agg) == expected


def test_a_rate_spans_at_least_four_scrapes_so_it_has_two_samples():
    assert (
        translate("requests_total", "rate", "counter", span=5, scrape=15) == "rate(requests_total[60000ms])"
    )


def test_histograms_read_their_buckets_sum_and_count():
    sel = 'latency_seconds{route=~"/api/.*"}'
    assert translate(sel, "p99", "histogram") == (
        'histogram_quantile(0.99, rate(latency_seconds_bucket{route=~"/api/.*"}[60000ms]))'
    )
    assert translate(sel, "avg", "histogram") == (
        'rate(latency_seconds_sum{route=~"/api/.*"}[60000ms])'
        ' / rate(latency_seconds_count{route=~"/api/.*"}[60000ms])'
    )
    with pytest.raises(QueryError, match="no single observations.*max"):
        translate(sel, "max", "histogram")


def test_a_summarys_quantiles_are_refused_with_what_to_ask_instead():
    with pytest.raises(QueryError, match=r'rpc_seconds\{quantile="0.95"\}'):
        translate("rpc_seconds", "p95", "summary")


def test_label_values_are_escaped_and_variables_narrow_a_selector():
    sel = parse_selector(r'm{path="a\"b", host="x"}').narrowed({"host": "y", "instance": "h1"})
    assert promql.selector(sel) == r'm{path="a\"b",host="y",instance="h1"}'
    assert parse_selector(str(sel)) == sel


def test_a_dashboard_variable_must_name_a_label():
    base = {
        "id": "d",
        "title": "D",
        "access": "operations",
        "panels": [{"id": "p", "title": "P", "type": "line", "queries": [{"expr": "cpu"}]}],
    }
    board = Dashboard(**base, variables=[{"name": "instance", "values_from": "cpu"}])
    assert board.chosen({"instance": "h1", "range": "1h"}) == {"instance": "h1"}
    with pytest.raises(ValueError, match="variable names a label"):
        Dashboard(**base, variables=[{"name": "bad-name"}])
    with pytest.raises(ValueError, match="different label"):
        Dashboard(**base, variables=[{"name": "job"}, {"name": "job"}])
