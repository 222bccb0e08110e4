"""The REST API's frame: one route table (which also writes the OpenAPI spec), one error shape, bodies."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps

import orjson
from flask import Blueprint, Flask, Response, jsonify, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from dashboard_app import __version__
from dashboard_app.access.permissions import ANY_CALLER, Permission, Permissions
from dashboard_app.sources.source import NotPermitted, SourceUnavailable
from ingest.paths import API_PREFIX
from ingest.registration import MetricError
from query.promql.shorthand import ShorthandError
from query.promql.values import MAX_TIME, BadData, Execution, Timeout
from tsdb.aggregator import QueryError, QueryTimeout
from tsdb.selector import SelectorError

PREFIX = API_PREFIX
OPENAPI_PATH = "/api/v1/openapi.json"
log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses: the message says what is wrong and what is allowed."""

    def __init__(
        self, message: str, status: int = 400, field: str | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.field = field
        self.retry_after = retry_after


def error_response(
    message: str, status: int, field: str | None = None, retry_after: int | None = None
) -> Response:
    """Return the one error shape every endpoint uses."""
    body = {"ok": False, "error": message, "status": status}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


class QueryGate:
    """Let at most ``limit`` heavy queries run at once; the next one is told to come back (503)."""

    def __init__(self, limit: int, timeout: float):
        self.limit = limit
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(limit)

    def acquire(self) -> float:
        """Take a slot or raise a 503; return the deadline (a time.monotonic() value) to finish by."""
        if not self._slots.acquire(blocking=False):
            raise ApiError(f"{self.limit} queries are running; try again in a moment", 503, retry_after=1)
        return time.monotonic() + self.timeout

    def release(self) -> None:
        self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot for a block; yield its deadline."""
        deadline = self.acquire()
        try:
            yield deadline
        finally:
            self.release()


@dataclass
class Route:
    method: str
    path: str  # OpenAPI form: /dashboards/{id}
    summary: str
    tag: str
    allow: Permission
    body: dict | None = None
    params: list[dict] = field(default_factory=list)
    status: int = 200
    answer: dict | None = None  # JSON schema of a successful answer's fields (beside "ok")
    media: str = "application/json"  # the media type of a successful answer


class Api:
    """Collect the endpoints of the API under one prefix, with their documentation."""

    def __init__(self, permissions: Permissions, max_body: int = 1 << 20):
        self.blueprint = Blueprint("pulseboard_api", __name__)
        self.routes: list[Route] = []
        self.permissions = permissions
        self.max_body = max_body

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        tag: str,
        body: dict | None = None,
        *,
        allow: Permission,
        params: list[dict] | None = None,
        status: int = 200,
        answer: dict | None = None,
        media: str = "application/json",
    ) -> Callable:
        """Register a handler for METHOD path and who may call it; it returns JSON-able data or a Response."""

        def decorate(handler: Callable) -> Callable:
            @wraps(handler)
            def run(**kwargs):
                try:
                    out = handler(**kwargs)
                except ApiError as exc:
                    return error_response(str(exc), exc.status, exc.field, exc.retry_after)
                except MetricError as exc:
                    return error_response(str(exc), exc.status, exc.field)
                except (QueryTimeout, Timeout) as exc:
                    return error_response(str(exc), 503, "query", retry_after=1)
                except SourceUnavailable as exc:
                    return error_response(str(exc), 502, "source")
                except (QueryError, SelectorError, BadData, ShorthandError) as exc:
                    return error_response(str(exc).removeprefix('invalid parameter "query": '), 400, "query")
                except Execution as exc:  # over query.max_samples, or a PromQL error while it runs
                    return error_response(str(exc), 422, "query")
                except NotPermitted as exc:
                    return error_response(str(exc), 403, "query")
                except DBAPIError as exc:  # the state database refused the write: nothing was changed
                    log.error("state database: %s", exc)
                    return error_response(
                        "the state database could not be written "
                        f"({type(exc.orig).__name__ if exc.orig else 'error'}); nothing was changed: "
                        "check its disk or server, then try again",
                        507,
                    )
                except OSError as exc:  # every store writes its file before it changes what it holds
                    log.error("data directory: %s", exc)
                    return error_response(
                        f"the data directory could not be written ({exc.strerror or exc}); nothing was "
                        "changed: free space or fix its permissions, then try again",
                        507,
                    )
                if isinstance(out, Response):
                    return out
                code = status
                if isinstance(out, tuple):
                    out, code = out
                response = jsonify({"ok": True, **out})
                response.status_code = code
                return response

            flask_path = path.replace("{", "<").replace("}", ">")
            endpoint = f"{method.lower()}_{handler.__name__}"
            self.blueprint.add_url_rule(flask_path, endpoint, run, methods=[method])
            self.permissions.route(PREFIX + flask_path, (method,), allow)
            self.routes.append(
                Route(method, path, summary, tag, allow, body, params or [], status, answer, media)
            )
            return handler

        return decorate

    def json_body(self) -> object:
        """Read the request's JSON body: at most max_body bytes, with no NaN or Infinity."""
        length = request.content_length
        if length is not None and length > self.max_body:
            raise ApiError(f"the body is {length:,} bytes; at most {self.max_body:,} are accepted", 413)
        raw = request.get_data(cache=True)  # cached: the access checks may have read it first
        if len(raw) > self.max_body:
            raise ApiError(f"the body is larger than {self.max_body:,} bytes", 413)
        if not raw:
            raise ApiError("the body must be a JSON object", field="body")
        if _TWENTY_DIGITS not in raw.translate(_DIGITS):
            try:
                return orjson.loads(raw)  # in C; what it refuses is read again below, for the reason
            except orjson.JSONDecodeError:
                pass
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ApiError(f"the body is not valid JSON: {exc}", field="body") from None
        except RecursionError:
            raise ApiError("the body nests too deeply to be read", field="body") from None

    def json_object(self, holds: str = "") -> Mapping:
        """Read the body as a JSON object; anything else is a 400 that says what the object holds."""
        body = self.json_body()
        if not isinstance(body, Mapping):
            raise ApiError(f"the body must be a JSON object{' with ' + holds if holds else ''}", field="body")
        return body

    def attach(self, server: Flask) -> None:
        """Mount the API on the Flask server, with JSON errors for unknown paths and methods."""

        def unknown(rest: str):
            # Without this, the pages' catch-all route would answer unknown API paths with HTML.
            adapter = server.url_map.bind("localhost")
            for method in ("GET", "POST", "PUT", "DELETE"):
                if method == request.method:
                    continue
                try:
                    endpoint, _ = adapter.match(request.path, method=method)
                except HTTPException:
                    continue
                if endpoint != f"{self.blueprint.name}.unknown":
                    return error_response(f"{request.method} is not allowed on {request.path}", 405)
            return error_response(
                f"no endpoint {request.method} {request.path}; the list is at {OPENAPI_PATH}", 404
            )

        methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
        self.blueprint.add_url_rule("/<path:rest>", "unknown", unknown, methods=list(methods))
        self.permissions.route(PREFIX + "/<path:rest>", methods, ANY_CALLER)  # it only says "no such path"
        server.register_blueprint(self.blueprint, url_prefix=PREFIX)
        # No request body is read past this, with or without a Content-Length (413 otherwise).
        server.config["MAX_CONTENT_LENGTH"] = max(16 * 2**20, self.max_body)
        server.add_url_rule(OPENAPI_PATH, "openapi", lambda: jsonify(self.openapi()))
        self.permissions.route(OPENAPI_PATH, ("GET",), ANY_CALLER)

        @server.errorhandler(HTTPException)
        def _http_error(exc: HTTPException):
            if request.path.startswith("/api/"):
                message = exc.description or exc.name
                if exc.code == 404:
                    message = f"no endpoint {request.method} {request.path}; the list is at {OPENAPI_PATH}"
                elif exc.code == 405:
                    message = f"{request.method} is not allowed on {request.path}"
                return error_response(message, exc.code or 500)
            return exc

        @server.errorhandler(Exception)
        def _crash(exc: Exception):
            if isinstance(exc, HTTPException):
                return exc
            log.exception("request %s %s failed", request.method, request.path)
            if request.path.startswith("/api/"):
                return error_response("Pulseboard failed to answer; the log has the details", 500)
            return Response("Pulseboard failed to answer; the log has the details", 500)

    def openapi(self) -> dict:
        """Return the OpenAPI 3 document of every registered endpoint: parameters, bodies and answers."""
        paths: dict[str, dict] = {}
        error = {"$ref": "#/components/schemas/Error"}
        refusals = {
            "400": "Bad request: the error names the field",
            "401": "Not logged in, or no valid API key",
            "403": "Not allowed for this role, key scope or access level",
            "404": "Not found",
            "429": "Too many requests; Retry-After says when to come back",
        }
        for r in self.routes:
            if r.media == "application/json":
                answer = {
                    "type": "object",
                    "required": ["ok"],
                    "properties": {"ok": {"type": "boolean", "enum": [True]}, **(r.answer or {})},
                }
                content = _json(answer)
            else:
                content = {r.media: {"schema": {"type": "string", "format": "binary"}}}
            responses = {str(r.status): {"description": "Success", "content": content}}
            for code, text in refusals.items():
                responses[code] = {"description": text, "content": _json(error)}
            allow = r.allow
            op: dict = {
                "summary": r.summary,
                "tags": [r.tag],
                # Who may call it, as the route declares it (the guard enforces exactly this).
                "x-pulseboard-permission": {
                    "role": allow.role,
                    "key_scope": allow.scope,
                    "dashboard_from": allow.dashboard,
                    "series_from": allow.series,
                },
                "operationId": r.method.lower() + re.sub(r"[/{}.-]+", "_", r.path).rstrip("_"),
                "responses": responses,
            }
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_params(r.path)
            ] + r.params
            if params:
                op["parameters"] = params
            if r.body is not None:
                op["requestBody"] = {"required": True, "content": _json(r.body)}
                responses["413"] = {"description": "Body too large", "content": _json(error)}
            paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = op
        return {
            "openapi": "3.1.0",
            "info": {"title": "Pulseboard monitoring API", "version": __version__},
            "paths": paths,
            "components": {
                "schemas": {
                    "Error": {
                        "type": "object",
                        "required": ["ok", "error", "status"],
                        "properties": {
                            "ok": {"type": "boolean", "enum": [False]},
                            "error": {"type": "string"},
                            "status": {"type": "integer"},
                            "field": {"type": "string"},
                        },
                    }
                },
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "pulseboard"},
                },
            },
            "security": [{"bearer": []}, {"apiKey": []}, {"session": []}],
        }


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


# Integers past 64 bits, which orjson reads as floats and Python's json as integers, are read by the
# latter: a body with a run of 20 digits (found by mapping every digit to 0 and the rest to a space).
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_TWENTY_DIGITS = b"0" * 20


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number; values must be finite")


def query_number(name: str, default: float | None) -> float | None:
    """Read a finite number from the query string; the default when it is absent or empty."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(f"{name} must be a number", field=name) from None
    if not math.isfinite(value):
        raise ApiError(f"{name} must be a finite number", field=name)
    return value


def parse_step(value: object, field_name: str = "step") -> float:
    """Read a positive, finite number of seconds; raise ApiError naming the field."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ApiError(f"{field_name} must be a positive number of seconds", field=field_name)
    return float(value)


def parse_time(value: object, field_name: str) -> float:
    """Read Unix seconds or an RFC 3339 string; raise ApiError naming the field."""
    seconds = _time(value, field_name)
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIME:
        raise ApiError(f"{field_name} must be a time within 10^13 seconds of 1970", field=field_name)
    return seconds


def _time(value: object, field_name: str) -> float:
    if isinstance(value, bool):
        raise ApiError(f"{field_name} must be Unix seconds or an RFC 3339 time", field=field_name)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                f"{field_name} must be Unix seconds or an RFC 3339 time such as 2026-11-25T10:00:00Z",
                field=field_name,
            ) from None
        if moment.tzinfo is None:
            raise ApiError(f"{field_name} needs a time zone (Z or +00:00)", field=field_name)
        return moment.timestamp()
    raise ApiError(f"{field_name} must be Unix seconds or an RFC 3339 time", field=field_name)
