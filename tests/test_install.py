"""Pulseboard installed as a user installs it: `pip install .` into a clean venv, then the `pulseboard`
command, run from a directory that is not the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import requests

from dashboard_app import __version__
from tests.servers import ROOT, free_port, launch, stop, wait_http


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with Pulseboard installed from the checkout; returns its `pulseboard`."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
        cwd=venv,
    )
    return venv / "bin/pulseboard"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without Pulseboard's variables or the checkout on the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_") and k != "PYTHONPATH"}
    return {**env, **extra}


def run(command: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    env = clean_env(**extra)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_the_command_says_its_version(installed, tmp_path):
    done = run([str(installed), "version"], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"pulseboard {__version__}"


def test_pulseboard_serve_answers_on_a_free_port_with_one_version_everywhere(installed, tmp_path):
    port = free_port()
    proc = launch(
        [str(installed), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        clean_env(),
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_http(f"{base}/operations", proc, timeout=60) == 200
        assert wait_http(f"{base}/assets/pulseboard.css", proc) == 200  # the page is styled, not bare
        assert get_json(f"{base}/api/v1/monitoring/version")["version"] == __version__
        assert get_json(f"{base}/api/v1/status/buildinfo")["data"]["version"] == __version__
    finally:
        assert stop(proc) == 0
    assert (tmp_path / "data" / "tsdb").is_dir()  # history went where --data-dir said


def test_init_writes_a_configuration_that_serves_and_check_config_finds_a_planted_error(installed, tmp_path):
    config = tmp_path / "etc"
    done = run([str(installed), "init", str(config)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "#" in (config / "production.yaml").read_text()  # a starter with its comments
    assert run([str(installed), "check-config", str(config)], tmp_path).returncode == 0

    dashboard = config / "dashboards" / "executive.yaml"
    lines = dashboard.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("type:"))
    lines[at] = lines[at].replace("type:", "type: sparkline  #", 1)
    dashboard.write_text("\n".join(lines) + "\n")
    rules = config / "alerts" / "default.yaml"
    rules.write_text(
        "rules:\n  - id: cpu-high\n    name: CPU\n    query: pulseboard_system_cpu_usage_ratio\n"
        "    condition: '=>'\n    threshold: 0.9\n"
    )
    done = run([str(installed), "check-config", str(config)], tmp_path)
    assert done.returncode == 1
    assert f"{dashboard}:{at + 1}: panel" in done.stderr and "must be one of" in done.stderr
    assert f"{rules}:5: rule 'cpu-high': condition: must be one of" in done.stderr
    assert "2 error(s) in 7 file(s) checked" in done.stderr  # both, not only the first


def test_the_configuration_directory_is_found_through_pulseboard_config(installed, tmp_path):
    config = tmp_path / "etc"
    assert run([str(installed), "init", str(config)], tmp_path).returncode == 0
    dashboard = config / "dashboards" / "executive.yaml"
    dashboard.write_text(dashboard.read_text().replace("title: ", "title: Board of ", 1))
    port = free_port()
    proc = launch(
        [str(installed), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        clean_env(PULSEBOARD_CONFIG=str(config)),
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/executive", proc, timeout=60)
        shown = get_json(f"{base}/api/v1/monitoring/dashboards/executive")
        assert shown["dashboard"]["title"].startswith("Board of ")
    finally:
        stop(proc)


def test_a_missing_configuration_directory_is_refused_by_name(installed, tmp_path):
    done = run([str(installed), "serve", "--config", str(tmp_path / "nowhere")], tmp_path)
    assert done.returncode == 2
    assert f"{tmp_path / 'nowhere'}: --config: no such configuration directory" in done.stderr


def test_the_systemd_unit_passes_systemd_analyze_verify(installed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd"
    text = (ROOT / "deploy" / "pulseboard.service").read_text()
    hardening = ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=pulseboard", "PrivateTmp=yes")
    assert all(line in text.splitlines() for line in hardening)
    unit = tmp_path / "pulseboard.service"
    unit.write_text(text.replace("/opt/pulseboard/bin/", f"{installed.parent}/"))  # installed here
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")  # not even a setting ignored
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=very"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert "Failed to parse protect system value" in done.stderr  # it reads every setting


def test_the_production_server_command_of_the_image_serves_with_secrets_from_files(installed, tmp_path):
    (tmp_path / "secret_key").write_text("k" * 48 + "\n")
    (tmp_path / "admin_password").write_text("a long admin password #1\n")
    port = free_port()
    gunicorn = installed.parent / "gunicorn"
    env = clean_env(
        PULSEBOARD_ENV="production",
        PULSEBOARD_DATA_DIR=str(tmp_path / "data"),
        PULSEBOARD_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
        PULSEBOARD_ADMIN_PASSWORD_FILE=str(tmp_path / "admin_password"),
    )
    command = [str(gunicorn), "-c", "python:dashboard_app.production", "--bind", f"127.0.0.1:{port}"]
    proc = launch(
        [*command, "dashboard_app.wsgi:server"],
        env,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_http(f"{base}/-/healthy", proc, timeout=60) == 200
        login = requests.post(
            f"{base}/login",
            data={"user": "admin", "password": "a long admin password #1"},
            headers={"Origin": base},
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 302  # the password from the file, '#' and all
    finally:
        assert stop(proc) == 0
