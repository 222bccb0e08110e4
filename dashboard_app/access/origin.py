"""Cross-site request checks: a change made with a login must come from Pulseboard's own pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request


def same_origin() -> bool:
    """Return whether the request's Origin (or Referer) is this site; a missing one is not."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return bool(source) and urlsplit(source).netloc == request.host


def foreign_origin() -> bool:
    """Return whether the request names an Origin of another site (a missing one is not foreign)."""
    source = request.headers.get("Origin")
    return bool(source) and urlsplit(source).netloc != request.host
