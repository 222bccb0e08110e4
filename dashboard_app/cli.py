"""The ``pulseboard`` command: serve, agent, check-config, init, backup, version."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
from pathlib import Path

from dashboard_app import __version__
from dashboard_app.config_dir import ENV_VAR, find_config, write_starter
from dashboard_app.settings import ENVIRONMENTS, LISTEN, load_settings, served_at
from layouts.validation import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build(
    environment: str,
    data_dir: str | Path,
    config_dir: str | None = None,
    address: tuple[str, int] = LISTEN,
):
    """Load the settings, start collecting and return the Dash app (served on ``address``)."""
    from dashboard_app.runtime import Runtime  # here, so an agent never loads the pages' libraries
    from dashboard_app.server import create_app

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = find_config(config_dir)
    settings = served_at(load_settings(environment, config=config), *address)
    runtime = Runtime(settings, data_dir, config=config)
    app = create_app(runtime)
    runtime.start()
    atexit.register(runtime.stop)
    return app


def _common(parser: argparse.ArgumentParser, *, listen: bool = True) -> None:
    parser.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=os.environ.get("PULSEBOARD_ENV", "development"),
        help="which settings file, <env>.yaml, to use (default: development, or $PULSEBOARD_ENV)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="DIR",
        help=f"configuration directory (default: ${ENV_VAR}, else /etc/pulseboard when it exists, "
        "else the shipped defaults)",
    )
    if listen:
        host, port = LISTEN
        parser.add_argument("--host", default=host, help=f"address to listen on (default: {host})")
        parser.add_argument("--port", type=int, default=port, help=f"port to listen on (default: {port})")
    _data_dir(parser)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PULSEBOARD_DATA_DIR", "./data"),
        help="where history, users, keys and rules are kept (default: ./data, or $PULSEBOARD_DATA_DIR)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pulseboard",
        description="Pulseboard: live monitoring dashboards for one host and its services.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"pulseboard {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="serve the dashboards, the API and the alerts (default)")
    _common(serve_parser)
    top.epilog = "With no command, pulseboard serves:\n\n" + serve_parser.format_help()
    _common(
        commands.add_parser(
            "agent", help="only this host's collectors and /metrics, for a Prometheus server to scrape"
        )
    )
    check = commands.add_parser(
        "check-config",
        help="validate environment files, settings, dashboards and rules; exit 1 listing every error",
    )
    _common(check, listen=False)
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="configuration directories or files (default: the configuration in force and the environment)",
    )
    init = commands.add_parser("init", help="write a starter configuration, with comments, into DIR")
    init.add_argument("directory", type=Path, metavar="DIR")
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the data directory into DIR, while the server runs"
    )
    backup.add_argument("directory", type=Path, metavar="DIR")
    _data_dir(backup)
    commands.add_parser("version", help="print Pulseboard's version")
    return top


def _configuration_error(exc: ConfigError) -> int:
    print(f"pulseboard: configuration error\n{exc}", file=sys.stderr)
    return 2


def serve(args: argparse.Namespace) -> int:
    """Serve with the production server, in every environment."""
    from dashboard_app.access.secrets import load_secrets
    from dashboard_app.serving import Server

    try:  # what stops a start is said here, before the server forks its worker
        settings = load_settings(args.env, config=find_config(args.config))
        if settings.auth.enabled:
            load_secrets()
    except ConfigError as exc:
        return _configuration_error(exc)
    address = (args.host, args.port)

    def load():
        try:
            return build(args.env, args.data_dir, args.config, address).server
        except ConfigError as exc:
            _configuration_error(exc)
            sys.exit(3)  # the worker cannot boot: gunicorn stops rather than retrying

    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Pulseboard {__version__} ({args.env}) on http://{host}:{args.port}/", flush=True)
    Server(load, settings, f"{host}:{args.port}").run()
    return 0


def agent(args: argparse.Namespace) -> int:
    from dashboard_app.agent import Agent

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        runner = Agent(load_settings(args.env, config=find_config(args.config)))
    except ConfigError as exc:
        return _configuration_error(exc)
    port = args.port
    runner.start()
    atexit.register(runner.stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Pulseboard agent ({args.env}): metrics on http://{args.host}:{port}/metrics", flush=True)
    runner.serve(args.host, port)
    return 0


def check_config(args: argparse.Namespace) -> int:
    from dashboard_app.check_config import check

    try:
        config = find_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    report = check(args.paths, args.env, config, dict(os.environ))
    for note in report.notes:
        print(f"note: {note}")
    for error in report.errors:
        print(error, file=sys.stderr)
    files = len(report.checked)
    if report.errors:
        print(f"{len(report.errors)} error(s) in {files} file(s) checked", file=sys.stderr)
        return 1
    where = ", ".join(str(p) for p in args.paths) if args.paths else config.describe()
    print(f"ok: {files} file(s) checked ({where})")
    return 0


def init(args: argparse.Namespace) -> int:
    try:
        written = write_starter(args.directory)
    except ConfigError as exc:
        print(f"pulseboard init: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"start on it with: pulseboard serve --config {args.directory}  (or {ENV_VAR}={args.directory})")
    return 0


def backup(args: argparse.Namespace) -> int:
    from dashboard_app.backup import BackupError, write_backup

    try:
        copied = write_backup(Path(args.data_dir), args.directory)
    except BackupError as exc:
        print(f"pulseboard backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {len(copied)} file(s) from {args.data_dir} to {args.directory}")
    print(f"start on the copy with: pulseboard serve --data-dir {args.directory}")
    elsewhere = _state_elsewhere()
    if elsewhere:
        print(
            f"the state database (users, dashboards, rules, alerts) is {elsewhere}, not in the data "
            "directory: back it up with pg_dump -Fc (restore with pg_restore into an empty database)"
        )
    return 0


def _state_elsewhere() -> str | None:
    """The PostgreSQL database the environment's settings name, password left out; None for SQLite."""
    from sqlalchemy.engine import make_url

    try:
        url = load_settings(os.environ.get("PULSEBOARD_ENV", "development")).database.url
    except ConfigError:
        return None
    if not url or not url.startswith("postgresql"):
        return None
    parsed = make_url(url)
    return f"PostgreSQL {parsed.database} on {parsed.host}:{parsed.port or 5432}"


COMMANDS = {
    "serve": serve,
    "agent": agent,
    "check-config": check_config,
    "init": init,
    "backup": backup,
    "version": lambda args: print(f"pulseboard {__version__}") or 0,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "serve")  # `pulseboard --port 8060` and `python app.py` serve, as they always have
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)
