"""What every benchmark module shares: a free loopback port and the Markdown table of results."""

from __future__ import annotations

import os
import socket
import time

import requests


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, what: str, timeout: float = 60) -> None:
    """Wait until a URL answers 2xx; raise naming ``what`` when it does not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s")


def print_results(results: dict[str, dict]) -> None:
    """Print the core count and one table row per benchmark."""
    print(f"cores: {os.cpu_count()}")
    print("| benchmark | result |\n|---|---|")
    for name, values in results.items():
        text = ", ".join(
            f"{k} = {v:,.2f}"
            if isinstance(v, float)
            else f"{k} = {v:,}"
            if isinstance(v, int)
            else f"{k} = {v}"
            for k, v in values.items()
        )
        print(f"| {name} | {text} |")
