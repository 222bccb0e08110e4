"""Hypothesis sends every declared callback inputs of any JSON shape: the answer is never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard_app.runtime import Runtime
from dashboard_app.server import create_app
from tests.servers import quiet_settings

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
CONCRETE = {"dashboard": "operations", "panel": "cpu-total", "name": "instance"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    runtime = Runtime(quiet_settings(), tmp_path_factory.mktemp("fuzz"))
    dash_app = create_app(runtime)
    client = dash_app.server.test_client()
    client.get("/operations")  # the first request sets the page machinery up
    yield dash_app, client
    runtime.archive.close()


def _component(raw_id: str, prop: str, value=None, with_value: bool = True):
    """One request item; a pattern id (ALL) becomes a list of one concrete component."""
    if raw_id.startswith("{"):
        pattern = json.loads(raw_id)
        concrete = {k: (CONCRETE.get(k, "x") if v == ["ALL"] else v) for k, v in pattern.items()}
        item = {"id": concrete, "property": prop}
        if with_value:
            item["value"] = value
        return [item]
    item = {"id": raw_id, "property": prop}
    if with_value:
        item["value"] = value
    return item


def callbacks(dash_app) -> list[tuple[str, dict]]:
    permissions = dash_app.server.extensions["pulseboard_permissions"]
    return [(key, spec) for key, spec in dash_app.callback_map.items() if key in permissions.callbacks]


def test_every_server_callback_is_declared(app):
    dash_app, _ = app
    permissions = dash_app.server.extensions["pulseboard_permissions"]
    server_side = {key for key, spec in dash_app.callback_map.items() if "callback" in spec}
    assert server_side and server_side <= set(permissions.callbacks)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_callback_input_gets_a_5xx(app, data):
    dash_app, client = app
    key, spec = data.draw(st.sampled_from(callbacks(dash_app)))
    declared = spec["output"] if isinstance(spec["output"], list) else [spec["output"]]
    outputs = [_component(o.component_id_str(), o.component_property, with_value=False) for o in declared]
    inputs = [_component(i["id"], i["property"], data.draw(JSON)) for i in spec["inputs"]]
    state = [_component(s["id"], s["property"], data.draw(JSON)) for s in spec["state"]]
    body = {
        "output": key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": inputs,
        "state": state,
        "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"]
        if spec["inputs"]
        else [],
    }
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code < 500, (key, body, answer.get_data(as_text=True)[:500])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON)
def test_a_malformed_callback_request_is_a_400(app, body):
    _, client = app
    answer = client.post("/_dash-update-component", json=body)
    assert 400 <= answer.status_code < 500
