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


def test_compose_runs_agents_prometheus_two_replicas_on_postgresql_and_alertmanager(compose):
    services = compose["services"]
    assert {"agent", "prometheus", "postgres", "pulseboard-1", "pulseboard-2", "alertmanager"} <= set(
        services
    )
    replicas = [services[f"pulseboard-{n}"]["environment"] for n in (1, 2)]
    assert replicas[0] == replicas[1]  # interchangeable: one database, one server, the same secrets
    assert replicas[0]["PULSEBOARD_SOURCE"] == "prometheus"
    assert replicas[0]["PULSEBOARD_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert replicas[0]["PULSEBOARD_ALERTS__ALERTMANAGER"] == "http://alertmanager:9093"
    assert replicas[0]["PULSEBOARD_DATABASE__URL_FILE"] == "/run/secrets/database_url"
    assert set(compose["secrets"]) == {"secret_key", "admin_password", "database_password", "database_url"}
    assert "--web.enable-remote-write-receiver" in services["prometheus"]["command"]  # pushes go there
    balancer = services["balancer"]["command"]
    assert [balancer[i + 1] for i, a in enumerate(balancer) if a == "--to"] == [
        "pulseboard-1:8050",
        "pulseboard-2:8050",
    ]
    agent = services["agent"]["command"]
    args = parser().parse_args(agent[1:])  # the command line is one `pulseboard` takes
    assert args.command == "agent" and args.port == 9101


def test_every_setting_the_compose_file_gives_pulseboard_is_valid(compose, tmp_path):
    (tmp_path / "secret_key").write_text("k" * 48 + "\n")
    (tmp_path / "admin_password").write_text("a long admin password\n")
    (tmp_path / "database_url").write_text("postgresql://pulseboard:pw@postgres:5432/pulseboard\n")
    for name in ("agent", "pulseboard-1"):
        environment = compose["services"][name].get("environment", {})
        values = {
            var: (str(value).replace("/run/secrets", str(tmp_path)), line)
            for line, (var, value) in enumerate(environment.items(), 1)
        }
        assert check_environment(values, f"compose {name}", "production", ConfigDir()) == []


def test_the_compose_servers_configurations_pass_their_own_checkers(compose, tmp_path):
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "promtool and amtool come with `make test` (Debian's prometheus packages)"
    # The scrape key's file is where compose mounts it: here, beside a copy of the configuration.
    (tmp_path / "scrape_key").write_text("pb_key\n")
    prometheus = (DEPLOY / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(
        prometheus.replace("/etc/prometheus/scrape_key", str(tmp_path / "scrape_key"))
    )
    for command, target in (
        ([promtool, "check", "config"], tmp_path / "prometheus.yml"),
        ([amtool, "check-config"], DEPLOY / "alertmanager.yml"),
    ):
        done = subprocess.run([*command, str(target)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    node, replicas = yaml.safe_load(prometheus)["scrape_configs"]
    assert node["static_configs"][0]["targets"] == ["agent:9101"]  # the compose agent's port
    assert replicas["static_configs"][0]["targets"] == ["pulseboard-1:8050", "pulseboard-2:8050"]
    assert replicas["authorization"]["credentials_file"] == "/etc/prometheus/scrape_key"
