"""Shared fixtures: a hand-moved clock, a scripted psutil, and headless Chromium for browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.options import Options

from dashboard_app.runtime import Runtime
from tests.fakes import FakeClock, FakePs
from tests.servers import Running, quiet_settings, serving
from tsdb.store import Store, Tier


def pytest_setup_options():
    """Run dash[testing]'s Chromium headless and as root, with or without --headless."""
    options = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1024",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    return options


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_ps() -> FakePs:
    return FakePs()


@pytest.fixture
def store(clock) -> Store:
    """A store shaped like development: 15 min raw at 1 s, 1 day of minutes."""
    return Store(Tier(0, 900), 1, [Tier(60, 86400)], clock=clock)


@pytest.fixture
def pulseboard(tmp_path) -> Iterator[Running]:
    """A Pulseboard without the demo on a real port; its jobs run only when a test runs them."""
    runtime = Runtime(quiet_settings(), tmp_path)
    with serving(runtime) as running:
        yield running
    runtime.archive.close()
