"""What the PromQL editor offers while one types, and where it says a wrong text goes wrong."""

from __future__ import annotations

import pytest

from query.promql.completion import complete, locate

NAMES = ["node_cpu_seconds_total", "node_load1", "up", "pulseboard_system_cpu_usage_ratio"]
LABELS = {"node_cpu_seconds_total": ["cpu", "instance", "mode"]}
VALUES = {("mode", "node_cpu_seconds_total"): ["idle", "iowait", "user"], ("job", None): ["node"]}


def offered(text: str) -> list[tuple[str, str, int]]:
    suggestions = complete(
        text,
        lambda: NAMES,
        lambda metric: LABELS.get(metric, ["instance", "job"]),
        lambda label, metric: VALUES.get((label, metric), []),
    )
    return [(s.text, s.kind, s.start) for s in suggestions]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("node_l", [("node_load1", "metric", 0)]),
        ("rat", [("rate", "function", 0), ("pulseboard_system_cpu_usage_ratio", "metric", 0)]),
        (
            "cpu",
            [("node_cpu_seconds_total", "metric", 0), ("pulseboard_system_cpu_usage_ratio", "metric", 0)],
        ),
        ("sum by (jo", [("job", "label", 8)]),
        ("rate(node_cpu_seconds_total{mo", [("mode", "label", 28)]),
        ('node_cpu_seconds_total{mode="i', [("idle", "value", 29), ("iowait", "value", 29)]),
        (
            'node_cpu_seconds_total{mode=~"',
            [("idle", "value", 30), ("iowait", "value", 30), ("user", "value", 30)],
        ),
        ('up{job="node", ', [("instance", "label", 15), ("job", "label", 15)]),
        ("up ", []),
        ("", []),
    ],
)
def test_completion_offers_what_fits_where_the_text_ends(text, expected):
    assert offered(text) == expected


@pytest.mark.parametrize(
    "text, at, words",
    [
        ("rate(up[5m]", 4, "not closed"),
        ("sum(up))", 7, "closes nothing"),
        ('up{job="node}', 7, "string opened here is not closed"),
        ("nosuch(up)", 0, "unknown function"),
        ('up{job="(x"}[5m', 12, "not closed"),  # a bracket inside a string is text
    ],
)
def test_a_wrong_text_says_where(text, at, words):
    problem = locate(text)
    assert problem is not None and problem.at == at and words in problem.message


def test_a_good_text_has_no_problem():
    assert locate('sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[$__rate_interval]))') is None
