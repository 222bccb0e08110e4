"""The dashboard shorthand as PromQL, the range variables, and PromQL written back with a dashboard's
variables in every selector."""

from __future__ import annotations

import pytest

from layouts.schema import Dashboard, PanelQuery
from query.promql.engine import parse
from query.promql.printer import metric_names, narrow, write
from query.promql.shorthand import ShorthandError, compile_query, expand
from tests.test_promql_compliance import CASES, EXTRA


def promql(expr: str, agg: str | None = None, over=None, scale=1.0, smooth=None) -> str:
    return compile_query(expr, agg, over, scale, smooth).promql


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        (None, 'avg_over_time(cpu{host="a"}[$__interval])'),
        ("max", 'max_over_time(cpu{host="a"}[$__interval])'),
        ("last", 'last_over_time(cpu{host="a"}[$__interval])'),
        ("count", 'count_over_time(cpu{host="a"}[$__interval])'),
        ("rate", 'rate(cpu{host="a"}[$__rate_interval])'),
    ],
)
def test_each_aggregation_of_the_shorthand_is_its_over_time_function(agg, expected):
    assert promql('cpu{host="a"}', agg) == expected


def test_a_percentile_reads_observations_or_a_histograms_buckets_never_a_summarys_quantiles():
    text = promql('latency_seconds{route=~"/api/.*"}', "p99")
    assert text == (
        'quantile_over_time(0.99, latency_seconds{route=~"/api/.*", quantile=""}[$__interval])'
        ' or histogram_quantile(0.99, rate(latency_seconds_bucket{route=~"/api/.*"}[$__rate_interval]))'
    )
    parse(expand(text, 60, 15))


def test_a_ratio_a_scale_and_a_smoothing_window():
    assert promql("conversions_total", "rate", over="sessions_total", smooth=300) == (
        "rate(conversions_total[5m]) / on() group_left() (sum(rate(sessions_total[5m])) > 0)"
    )
    assert promql("revenue_total", "rate", scale=3600.0, smooth=300) == "rate(revenue_total[5m]) * 3600"


def test_the_shorthand_fields_shape_a_selector_only():
    with pytest.raises(ShorthandError, match="agg, over, scale and smooth shape a series selector"):
        compile_query("rate(x[5m])", "avg", None, 1.0, None)
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        PanelQuery(expr="rate(x[5m]")


def test_the_range_variables_follow_the_step_and_the_collection_interval():
    assert expand("rate(x[$__rate_interval]) + avg_over_time(x[$__interval])", 5, 15) == (
        "rate(x[1m]) + avg_over_time(x[5s])"
    )
    assert expand("rate(x[$__rate_interval])", 120, 15) == "rate(x[2m15s])"
    assert expand("increase(x[${__range}])", 60, 15, span=86400) == "increase(x[1d])"


def test_a_plain_average_keeps_its_band_of_lowest_and_highest():
    assert compile_query("avg_over_time(cpu[$__interval])", None, None, 1.0, None).band == (
        "min_over_time(cpu[$__interval])",
        "max_over_time(cpu[$__interval])",
    )
    assert compile_query("rate(x[$__rate_interval])", None, None, 1.0, None).band is None


def test_variables_narrow_every_selector_of_any_expression():
    text = narrow('sum by (mode) (rate(cpu{instance="a", mode!="idle"}[5m])) / on() up', {"instance": "h1"})
    assert text == 'sum by (mode) (rate(cpu{mode!="idle", instance="h1"}[300s])) / on () up{instance="h1"}'
    assert metric_names(text) == ["cpu", "up"]


def test_every_suite_query_is_written_back_as_the_same_expression():
    for query, _ in CASES + [(e, False) for e in EXTRA]:
        query = query.replace("AT", "1700000000")
        try:
            node = parse(query)
        except ValueError:
            continue  # the suite's refusals
        text = write(node)
        assert write(parse(text)) == text, query


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


def test_variables_narrow_a_query_that_holds_range_variables():
    text = narrow("avg_over_time(cpu[$__interval]) / rate(x[${__rate_interval}])", {"instance": "h1"})
    assert text == 'avg_over_time(cpu{instance="h1"}[$__interval]) / rate(x{instance="h1"}[$__rate_interval])'
