"""The deployment files as their tools read them: hadolint for the Dockerfile, promtool and amtool for
the compose layout's servers, Pulseboard's own check for the settings each service is given, and the
health endpoints the container's HEALTHCHECK and load balancers call."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from dashboard_app.check_config import check_environment
from dashboard_app.cli import parser
from dashboard_app.config_dir import ConfigDir
from dashboard_app.runtime import Runtime
from tests.servers import ROOT, quiet_settings, serving

DEPLOY = ROOT / "deploy"
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def dockerfile() -> list[str]:
    return (ROOT / "Dockerfile").read_text().splitlines()


def instruction(name: str) -> list[str]:
    return [line for line in dockerfile() if line.startswith(name + " ")]


def test_hadolint_passes_the_dockerfile():
    done = subprocess.run([HADOLINT, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install dash\nUSER root\n")
    done = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "DL3007" in done.stdout  # the lint is real, not a formality


def test_the_image_is_slim_runs_unprivileged_keeps_data_in_a_volume_and_checks_its_health():
    [base] = instruction("FROM")
    assert base.startswith("FROM python:3.11-slim")
    [user] = instruction("USER")
    assert user.split()[1].split(":")[0] not in ("0", "root")
    [volume] = instruction("VOLUME")
    assert "/var/lib/pulseboard" in volume
    text = "\n".join(dockerfile())
    assert "PULSEBOARD_DATA_DIR=/var/lib/pulseboard" in text and "HEALTHCHECK" in text
    assert "/-/healthy" in text.split("HEALTHCHECK", 1)[1]
    [command] = instruction("CMD")
    assert "gunicorn" in command and "dashboard_app.production" in command
    assert "dashboard_app.wsgi:server" in command


def test_health_endpoints_answer_without_a_login(tmp_path):
    from tests.test_access import SECRETS  # the production-like secrets the access tests use

    runtime = Runtime(quiet_settings(auth__enabled="true"), tmp_path, secrets=SECRETS)
    with serving(runtime) as pb:
        healthy = requests.get(pb.url + "/-/healthy", timeout=5)
        assert healthy.status_code == 200 and healthy.text == "Pulseboard is Healthy.\n"
        assert requests.get(pb.url + "/-/ready", timeout=5).status_code == 503  # not collecting yet
        runtime.scheduler.start()
        try:
            assert requests.get(pb.url + "/-/ready", timeout=5).status_code == 200
        finally:
            runtime.scheduler.stop()
        assert requests.get(pb.url + "/api/v1/monitoring/metrics/health", timeout=5).status_code == 401


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_agents_prometheus_pulseboard_and_alertmanager(compose):
    services = compose["services"]
    assert {"agent", "prometheus", "pulseboard", "alertmanager"} <= set(services)
    pulseboard = services["pulseboard"]["environment"]
    assert pulseboard["PULSEBOARD_SOURCE"] == "prometheus"
    assert pulseboard["PULSEBOARD_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert pulseboard["PULSEBOARD_ALERTS__ALERTMANAGER"] == "http://alertmanager:9093"
    assert set(compose["secrets"]) == {"secret_key", "admin_password"}
    agent = services["agent"]["command"]
    args = parser().parse_args(agent[1:])  # the command line is one `pulseboard` takes
    assert args.command == "agent" and args.port == 9101


def test_every_setting_the_compose_file_gives_pulseboard_is_valid(compose, tmp_path):
    (tmp_path / "secret_key").write_text("k" * 48 + "\n")
    (tmp_path / "admin_password").write_text("a long admin password\n")
    for name in ("agent", "pulseboard"):
        environment = compose["services"][name].get("environment", {})
        values = {
            var: (str(value).replace("/run/secrets", str(tmp_path)), line)
            for line, (var, value) in enumerate(environment.items(), 1)
        }
        assert check_environment(values, f"compose {name}", "production", ConfigDir()) == []


def test_the_compose_servers_configurations_pass_their_own_checkers(compose):
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "promtool and amtool come with `make test` (Debian's prometheus packages)"
    for command in ([promtool, "check", "config"], [amtool, "check-config"]):
        target = DEPLOY / ("prometheus.yml" if "promtool" in command[0] else "alertmanager.yml")
        done = subprocess.run([*command, str(target)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    scraped = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scraped["static_configs"][0]["targets"] == ["agent:9101"]  # the compose agent's port
