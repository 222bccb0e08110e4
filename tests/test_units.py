"""Units in Prometheus' naming: any is accepted on register and in dashboards; known ones are scaled."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dashboard_app.runtime import Runtime
from dashboard_app.sources.prometheus import unit_of_name
from layouts.schema import CHART_TYPES, Panel
from layouts.units import format_value
from tests.servers import quiet_settings, serving
from tests.test_charts import build_figure, frame


@pytest.mark.parametrize(
    "value, unit, shown",
    [
        (21.5, "celsius", "21.5 °C"),
        (1500, "joules", "1.5 kJ"),
        (0.003, "volts", "3 mV"),
        (2.4e9, "hertz", "2.4 GHz"),
        (0.25, "amperes", "250 mA"),
        (12300, "requests", "12.3k requests"),
        (7, "queue_items", "7 queue items"),
        (1536, "bytes", "1.5 KiB"),
        (0.4213, "ratio", "42.1%"),
        (3, "count", "3"),
    ],
)
def test_known_units_are_scaled_and_others_shown_as_they_are(value, unit, shown):
    assert format_value(value, unit) == shown


@pytest.mark.parametrize("kind", CHART_TYPES)
def test_every_chart_draws_a_unit_it_has_never_heard_of(kind):
    figure = build_figure(
        frame(scale=1000.0), Panel(id="p", title="P", type=kind, unit="joules", queries=[{"expr": "x"}])
    )
    assert figure.data
    text = figure.to_json()
    assert "kJ" in text or kind in ("pie", "table")  # pies and tables show the values' own text


def test_a_dashboard_refuses_a_unit_that_is_not_a_unit_name():
    with pytest.raises(ValidationError, match="unit name"):
        Panel(id="p", title="P", type="line", unit="Kilo Joules", queries=[{"expr": "x"}])


def test_units_in_prometheus_naming_are_taken_on_register(tmp_path):
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as pb:
        for unit in ("celsius", "joules", "volts", "meters", "requests"):
            body = {"name": f"lab_reading_{unit}", "type": "gauge", "unit": unit}
            answer = pb.call("POST", "/metrics/custom/register", body)
            assert answer.status_code == 201 and answer.json()["metric"]["unit"] == unit
        refused = pb.call(
            "POST", "/metrics/custom/register", {"name": "x", "type": "gauge", "unit": "Volts!"}
        )
        assert refused.status_code == 400 and refused.json()["field"] == "unit"
        assert "celsius" in refused.json()["error"]
        listed = {m["name"]: m["unit"] for m in pb.call("GET", "/metrics/custom/list").json()["metrics"]}
        assert listed["lab_reading_celsius"] == "celsius"
    assert runtime.source.unit("lab_reading_joules") == "joules"
    runtime.archive.close()


@pytest.mark.parametrize(
    "name, unit",
    [
        ("node_hwmon_temp_celsius", "celsius"),
        ("node_power_supply_energy_joules_total", "joules"),
        ("node_network_receive_bytes_total", "bytes"),
        ("node_load1", None),
    ],
)
def test_a_prometheus_metrics_unit_comes_from_its_name(name, unit):
    assert unit_of_name(name) == unit
