"""Callbacks of the dashboard editor: one draft per page, changed step by step, saved as a new version."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time

import yaml
from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from dashboard_app.access.permissions import Permission, Permissions
from dashboard_app.access.scoped import reads
from dashboard_app.api.dashboards import import_report
from dashboard_app.dashboard_store import DashboardError, document
from dashboard_app.pages.dashboards import window_for
from dashboard_app.pages.panels import narrow_panel, render_panel
from dashboard_app.runtime import Runtime
from ingest.paths import API_PREFIX
from layouts import drafts, grafana, ids
from layouts.charts import apply_theme, no_data
from layouts.editor_view import editor_card, report_table, versions_table
from layouts.schema import Panel, Variable
from layouts.validation import YamlProblem, load_yaml, yaml_place
from tsdb.metrics import ACCESS_LEVELS

EDITS = Permission("editor", "admin")
PREVIEW = Permission("editor", "admin", series="all")
PAGE = "/edit"
PREVIEW_POINTS = 240
HOLDER = Panel(id="preview", title="Preview", type="line", queries=[], text="")  # says why nothing shows


def _editable(runtime: Runtime, identity) -> list:
    """The dashboards a person may open in the editor: those of their levels. The shipped ones only an
    admin may save; anyone else opens them to clone them (Save then says so)."""
    return [d for d in runtime.dashboard_store.dashboards.values() if identity.sees(d.access)]


def _options(dashboards: list) -> list[dict]:
    return [{"label": f"{d.title} ({d.id})", "value": d.id} for d in dashboards]


def _draft(dashboard: dict, saved_id: str | None = None, base: int | None = None, selected=None) -> dict:
    """What the page keeps while a dashboard is edited: a saved one has its id and the version opened."""
    if selected is None:
        panels = dashboard.get("panels") if isinstance(dashboard.get("panels"), list) else []
        selected = panels[0].get("id") if panels and isinstance(panels[0], dict) else None
    return {
        "id": saved_id,
        "dashboard": dashboard,
        "base": base,
        "selected": selected,
    }


def _loaded(runtime: Runtime, dashboard_id: str) -> dict:
    library = runtime.dashboard_store
    dashboard = library.get(dashboard_id)
    return _draft(document(dashboard), dashboard.id, library.version(dashboard.id))


def _fresh(runtime: Runtime, identity, title: str = "New dashboard") -> dict:
    access = next((a for a in ACCESS_LEVELS if identity.sees(a)), ACCESS_LEVELS[0])
    draft = _draft({"id": "", "title": title, "access": access, "panels": []})
    drafts.new_panel(draft)
    return draft


def _uploaded(contents: str) -> object:
    """An uploaded file's document (YAML or JSON); ValueError with the reason."""
    try:
        _, data = contents.split(",", 1)
        text = base64.b64decode(data, validate=False).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("the file could not be read as text") from None
    try:
        return load_yaml(text)[0]  # JSON is YAML too
    except YamlProblem as exc:
        raise ValueError(f"the file is not YAML or JSON{yaml_place(exc)}: {exc.problem}") from None


def _versions(runtime: Runtime, draft: dict) -> list:
    if not draft.get("id"):
        return versions_table([], None)
    try:
        return versions_table(runtime.dashboard_store.versions(draft["id"]), draft.get("base"))
    except DashboardError:
        return []


def register(app: Dash, runtime: Runtime, permissions: Permissions) -> None:
    """Attach the editor's callbacks, with what they need declared."""
    library = runtime.dashboard_store
    callback = permissions.callback

    @callback(
        app,
        EDITS,
        Output(ids.EDIT_DRAFT, "data"),
        Output(ids.EDIT_DASHBOARD, "options"),
        Output(ids.EDIT_DASHBOARD, "value"),
        Output(ids.EDIT_TITLE, "value"),
        Output(ids.EDIT_ACCESS, "value"),
        Output(ids.EDIT_VARIABLES, "value"),
        Output(ids.EDIT_GRID, "children"),
        Output({"type": ids.EDIT_FIELD, "name": ALL}, "value"),
        Output({"type": ids.EDIT_EXPR, "index": ALL}, "value"),
        Output({"type": ids.EDIT_LEGEND, "index": ALL}, "value"),
        Output({"type": ids.EDIT_ERROR, "name": ALL}, "children"),
        Output(ids.EDIT_STATUS, "children"),
        Output(ids.EDIT_REPORT, "children"),
        Output(ids.EDIT_VERSIONS, "children"),
        Output(ids.EDIT_VERSION, "children"),
        Output(ids.EDIT_OPEN, "href"),
        Output(ids.EDIT_YAML, "href"),
        Output(ids.EDIT_JSON, "href"),
        Input(ids.URL, "pathname"),
        Input(ids.EDIT_DASHBOARD, "value"),
        Input(ids.EDIT_NEW, "n_clicks"),
        Input(ids.EDIT_CLONE, "n_clicks"),
        Input(ids.EDIT_DELETE, "submit_n_clicks"),
        Input(ids.EDIT_SAVE, "n_clicks"),
        Input(ids.EDIT_ADD, "n_clicks"),
        Input(ids.EDIT_DUPLICATE, "n_clicks"),
        Input(ids.EDIT_REMOVE, "n_clicks"),
        Input({"type": ids.EDIT_CARD, "index": ALL}, "n_clicks"),
        Input(ids.EDIT_LAYOUT, "data"),
        Input({"type": ids.EDIT_FIELD, "name": ALL}, "value"),
        Input({"type": ids.EDIT_EXPR, "index": ALL}, "value"),
        Input({"type": ids.EDIT_LEGEND, "index": ALL}, "value"),
        Input(ids.EDIT_TITLE, "value"),
        Input(ids.EDIT_ACCESS, "value"),
        Input(ids.EDIT_VARIABLES, "value"),
        Input(ids.EDIT_UPLOAD, "contents"),
        Input(ids.EDIT_IMPORT, "contents"),
        Input({"type": ids.EDIT_RESTORE, "index": ALL}, "n_clicks"),
        Input(ids.EDIT_PASTE_IMPORT, "n_clicks"),
        State(ids.EDIT_DRAFT, "data"),
        State(ids.EDIT_PASTE, "value"),
    )
    def edit(pathname, chosen_id, *_rest):
        if pathname != PAGE:
            raise PreventUpdate
        identity = reads().identity
        trigger = ctx.triggered_id
        triggered_value = ctx.triggered[0]["value"] if ctx.triggered else None
        draft = ctx.states.get(f"{ids.EDIT_DRAFT}.data")
        field_names = [item["id"]["name"] for item in ctx.inputs_list[11]]
        field_values = {item["id"]["name"]: item.get("value") for item in ctx.inputs_list[11]}
        exprs = [item.get("value") for item in ctx.inputs_list[12]]
        legends = [item.get("value") for item in ctx.inputs_list[13]]
        error_names = [item["id"]["name"] for item in ctx.outputs_list[10]]
        status, report, form_from_draft = None, None, True
        editable = _editable(runtime, identity)
        options = _options(editable)
        pending = draft.get("pending_query") if isinstance(draft, dict) else None
        asked = (
            draft.get("wanted") if isinstance(draft, dict) and isinstance(draft.get("wanted"), str) else None
        )
        valid_draft = isinstance(draft, dict) and isinstance(draft.get("dashboard"), dict)

        def load(dashboard_id):
            if dashboard_id in {d.id for d in editable}:
                return _loaded(runtime, dashboard_id)
            return _fresh(runtime, identity)

        if not valid_draft or trigger in (None, ids.URL):
            wanted = asked or (chosen_id if isinstance(chosen_id, str) else None)
            draft = (
                load(wanted) if wanted else (load(editable[0].id) if editable else _fresh(runtime, identity))
            )
            if isinstance(pending, str) and pending.strip():
                drafts.new_panel(draft, pending.strip())
                status = "A new panel holds the query from Explore: give it a title, then Save."
        elif trigger == ids.EDIT_DASHBOARD:
            if chosen_id == draft.get("id"):
                raise PreventUpdate
            draft = load(chosen_id)
        elif trigger == ids.EDIT_NEW:
            draft = _fresh(runtime, identity)
            status = "A new dashboard: give it a title and panels, then Save."
        elif trigger == ids.EDIT_CLONE:
            copied = copy.deepcopy(draft["dashboard"])
            copied["title"] = f"{copied.get('title', 'Dashboard')} (copy)"
            copied["id"] = ""
            draft = _draft(copied, selected=draft.get("selected"))
            status = "A copy: rename it if you like, then Save."
        elif trigger == ids.EDIT_DELETE:
            if not draft.get("id"):
                draft = load(editable[0].id) if editable else _fresh(runtime, identity)
                status = "The unsaved dashboard was discarded."
            else:
                gone = draft["id"]
                try:
                    library.delete(gone, identity.sees_everything)
                except DashboardError as exc:
                    status = str(exc)
                else:
                    editable = _editable(runtime, identity)
                    options = _options(editable)
                    back = library.get(gone)
                    if back is not None and gone in {d.id for d in editable}:
                        draft = load(gone)
                        status = f"Your saved versions of {gone!r} were deleted: it is as it shipped again."
                    else:
                        draft = load(editable[0].id) if editable else _fresh(runtime, identity)
                        status = f"Dashboard {gone!r} was deleted."
        elif trigger == ids.EDIT_SAVE:
            draft, status = _save(runtime, identity, draft)
            editable = _editable(runtime, identity)
            options = _options(editable)
        elif trigger == ids.EDIT_ADD:
            drafts.new_panel(draft)
        elif trigger == ids.EDIT_DUPLICATE:
            drafts.duplicate_panel(draft)
        elif trigger == ids.EDIT_REMOVE:
            drafts.remove_panel(draft)
        elif isinstance(trigger, dict) and trigger.get("type") == ids.EDIT_CARD:
            if not triggered_value or trigger.get("index") == draft.get("selected"):
                raise PreventUpdate
            draft["selected"] = trigger.get("index")
        elif trigger == ids.EDIT_LAYOUT:
            moved = triggered_value if isinstance(triggered_value, dict) else {}
            try:
                placed = drafts.place(
                    draft, str(moved.get("panel")), *(int(moved[k]) for k in ("x", "y", "w", "h"))
                )
            except (KeyError, TypeError, ValueError):
                raise PreventUpdate from None
            if not placed:
                raise PreventUpdate
        elif isinstance(trigger, dict) and trigger.get("type") in (
            ids.EDIT_FIELD,
            ids.EDIT_EXPR,
            ids.EDIT_LEGEND,
        ):
            panel = drafts.selected(draft)
            if panel is None:
                raise PreventUpdate
            before = json.dumps(panel, sort_keys=True)
            drafts.apply_form(panel, field_values, exprs, legends)
            if json.dumps(panel, sort_keys=True) == before:
                raise PreventUpdate
            drafts.name_new_panel(draft, panel)
            form_from_draft = False
        elif trigger == ids.EDIT_TITLE:
            if not isinstance(triggered_value, str) or triggered_value == draft["dashboard"].get("title"):
                raise PreventUpdate
            draft["dashboard"]["title"] = triggered_value
            form_from_draft = False
        elif trigger == ids.EDIT_ACCESS:
            if triggered_value not in ACCESS_LEVELS or triggered_value == draft["dashboard"].get("access"):
                raise PreventUpdate
            draft["dashboard"]["access"] = triggered_value
        elif trigger == ids.EDIT_VARIABLES:
            text = triggered_value if isinstance(triggered_value, str) else ""
            try:
                parsed = load_yaml(text)[0] if text.strip() else []
            except YamlProblem as exc:
                where = f"line {exc.line}: " if exc.line else ""
                return _only_error(error_names, "variables", f"{where}{exc.problem}")
            if not isinstance(parsed, list):
                return _only_error(error_names, "variables", "a list of variables (each starting with -)")
            draft["dashboard"]["variables"] = parsed
            form_from_draft = False
        elif trigger in (ids.EDIT_UPLOAD, ids.EDIT_IMPORT, ids.EDIT_PASTE_IMPORT):
            pasted = ctx.states.get(f"{ids.EDIT_PASTE}.value")
            try:
                if trigger == ids.EDIT_PASTE_IMPORT:
                    if not isinstance(pasted, str) or not pasted.strip():
                        raise ValueError("paste a Grafana dashboard's JSON into the box first")
                    try:
                        body = json.loads(pasted)
                    except ValueError as exc:
                        raise ValueError(f"the text is not JSON ({exc})") from None
                    except RecursionError:
                        raise ValueError("the text nests too deeply to be a dashboard") from None
                elif isinstance(triggered_value, str):
                    body = _uploaded(triggered_value)
                else:
                    raise PreventUpdate
            except ValueError as exc:
                status = f"Not loaded: {exc}"
            else:
                if trigger in (ids.EDIT_IMPORT, ids.EDIT_PASTE_IMPORT):
                    access = (
                        draft["dashboard"].get("access")
                        if identity.sees(draft["dashboard"].get("access"))
                        else None
                    )
                    access = access or next((a for a in ACCESS_LEVELS if identity.sees(a)), ACCESS_LEVELS[0])
                    try:
                        imported = grafana.read(body, "", access)
                    except grafana.GrafanaError as exc:
                        status = f"Not imported: {exc}"
                    else:
                        report = import_report(imported)
                        draft = _draft({**imported.dashboard, "id": ""})
                        status = (
                            f"Imported {imported.dashboard['title']!r} from Grafana: look it over, then Save."
                        )
                elif not isinstance(body, dict):
                    status = "Not loaded: the file must hold one dashboard (an object with id, title, panels)"
                else:
                    existing = library.get(str(body.get("id", "")))
                    if existing is not None and existing.id in {d.id for d in editable}:
                        draft = _draft(body, existing.id, library.version(existing.id))
                        status = f"Loaded the file over {existing.id!r}: Save makes it its next version."
                    else:
                        draft = _draft({**body, "id": "" if existing else body.get("id", "")})
                        status = "Loaded the file as a new dashboard: Save to keep it."
        elif isinstance(trigger, dict) and trigger.get("type") == ids.EDIT_RESTORE:
            version = trigger.get("index")
            if not triggered_value or not isinstance(version, int) or not draft.get("id"):
                raise PreventUpdate
            try:
                library.restore(
                    draft["id"], version, identity.name, draft.get("base"), identity.sees_everything
                )
            except DashboardError as exc:
                status = str(exc)
            else:
                draft = _loaded(runtime, draft["id"])
                status = f"Version {version} restored as version {draft['base']}."
        else:
            raise PreventUpdate

        by_field, others = drafts.mistakes(draft)
        errors = [by_field.get(name) for name in error_names]
        variable_errors = [o for o in others if o.startswith("variables")]
        if "variables" in error_names and variable_errors:
            errors[error_names.index("variables")] = "; ".join(variable_errors)
        others = [o for o in others if not o.startswith("variables")]
        if others and status is None:
            status = "To fix before saving: " + "; ".join(others[:5])
        selected_panel = drafts.selected(draft)
        form = drafts.form_values(selected_panel)
        expr_values, legend_values = drafts.query_values(selected_panel)
        d = draft["dashboard"]
        grid = [
            editor_card(p, p.get("id") == draft.get("selected"))
            for p in d.get("panels", [])
            if isinstance(p, dict)
        ]
        saved_id = draft.get("id") or None
        if saved_id is None:
            version = "not saved yet"
        else:
            version = f"version {draft.get('base')}" if draft.get("base") else "as shipped (version 0)"
        if saved_id:
            download = f"{API_PREFIX}/dashboards/{saved_id}/download"
            links = (f"/{saved_id}", download + "?format=yaml", download + "?format=json")
        else:
            links = ("#", "#", "#")
        form_out = [form.get(n) for n in field_names] if form_from_draft else [no_update] * len(field_names)
        exprs_out = expr_values if form_from_draft else [no_update] * len(exprs)
        legends_out = legend_values if form_from_draft else [no_update] * len(legends)
        variables_text = (
            yaml.safe_dump(d.get("variables") or [], sort_keys=False, allow_unicode=True)
            if d.get("variables")
            else ""
        )
        keep_text = trigger in (ids.EDIT_TITLE, ids.EDIT_VARIABLES)
        # An import's report stays while the imported draft is worked on; another dashboard clears it.
        switched = trigger in (
            None,
            ids.URL,
            ids.EDIT_DASHBOARD,
            ids.EDIT_NEW,
            ids.EDIT_CLONE,
            ids.EDIT_DELETE,
        )
        report_out = report_table(report) if report is not None else ([] if switched else no_update)
        return (
            draft,
            options,
            saved_id if saved_id else no_update,
            no_update if keep_text else d.get("title", ""),
            d.get("access"),
            no_update if keep_text else variables_text,
            grid,
            form_out,
            exprs_out,
            legends_out,
            errors,
            status,
            report_out,
            _versions(runtime, draft),
            version,
            *links,
        )

    @callback(
        app,
        PREVIEW,
        Output(ids.EDIT_PREVIEW, "figure"),
        Input(ids.EDIT_DRAFT, "data"),
        Input(ids.TIME_RANGE, "value"),
        Input(ids.CUSTOM_START, "value"),
        Input(ids.CUSTOM_END, "value"),
        Input(ids.THEME, "data"),
    )
    def preview(draft, range_value, custom_start, custom_end, theme):
        """Draw the selected panel as the draft has it, through the editor's own levels."""
        theme = theme if theme in ("light", "dark") else "light"
        if not isinstance(draft, dict) or not isinstance(draft.get("dashboard"), dict):
            raise PreventUpdate
        raw = drafts.selected(draft)
        if raw is None:
            return apply_theme(no_data(HOLDER, "Pick a panel, or add one"), theme)
        try:
            panel = Panel.model_validate(raw)
        except ValidationError:
            return apply_theme(no_data(HOLDER, "Fix the marked fields to see this panel"), theme)
        variables = []
        for v in draft["dashboard"].get("variables") or []:
            try:
                variables.append(Variable.model_validate(v))
            except (ValidationError, TypeError):
                continue
        panel = narrow_panel(panel, {}, tuple(variables))
        window = window_for(
            range_value if isinstance(range_value, str) else "1h", custom_start, custom_end, time.time()
        )
        if window is None:
            return apply_theme(no_data(panel, "Choose a start and an end (UTC)"), theme)
        return render_panel(reads().pages, panel, window, theme, PREVIEW_POINTS)


def _save(runtime: Runtime, identity, draft: dict) -> tuple[dict, str]:
    """Save a draft as a new dashboard or a new version; the draft back, and what happened."""
    library = runtime.dashboard_store
    by_field, others = drafts.mistakes(draft)
    if by_field or others:
        return draft, "Not saved: fix the marked fields first."
    data = copy.deepcopy(draft["dashboard"])
    if not identity.sees(data.get("access")):
        return (
            draft,
            f"Not saved: you may only make dashboards of your levels ({', '.join(identity.access)}).",
        )
    try:
        if not draft.get("id"):
            data["id"] = library.free_id(data.get("id") or str(data.get("title", "")))
            saved = library.create(data, identity.name, "created in the browser")
        else:
            data["id"] = draft["id"]
            saved = library.update(
                draft["id"], data, identity.name, draft.get("base"), identity.sees_everything
            )
    except DashboardError as exc:
        return draft, f"Not saved: {exc}"
    loaded = _loaded(runtime, saved.id)
    loaded["selected"] = (
        draft.get("selected")
        if any(p.id == draft.get("selected") for p in saved.panels)
        else loaded["selected"]
    )
    return loaded, f"Saved {saved.title!r} as version {loaded['base']}."


def _only_error(names: list[str], field: str, message: str) -> tuple:
    """Answer with one field's message and nothing else changed."""
    errors = [message if name == field else no_update for name in names]
    outputs = [no_update] * 18
    outputs[10] = errors
    return tuple(outputs)
