"""Start Pulseboard: `python app.py` for the built-in server, `gunicorn app:server` in production."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys

from dashboard_app.settings import ENVIRONMENTS, load_settings
from layouts.validation import ConfigError


def build(environment: str, data_dir: str):
    """Load the settings, start collecting and return the Dash app."""
    from dashboard_app.runtime import Runtime  # here, so an agent never loads the pages' libraries
    from dashboard_app.server import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = Runtime(load_settings(environment), data_dir)
    app = create_app(runtime)
    runtime.start()
    atexit.register(runtime.stop)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pulseboard: live monitoring dashboards for one host and its services."
    )
    parser.add_argument(
        "mode",
        nargs="?",
        choices=("serve", "agent"),
        default="serve",
        help="serve: the dashboards (default); agent: only this host's collectors and /metrics, "
        "for a Prometheus server to scrape",
    )
    parser.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=os.environ.get("PULSEBOARD_ENV", "development"),
        help="settings file config/<env>.yaml to use (default: development, or $PULSEBOARD_ENV)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (default: 8050)")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PULSEBOARD_DATA_DIR", "./data"),
        help="where history is kept across restarts (default: ./data, or $PULSEBOARD_DATA_DIR)",
    )
    return parser.parse_args(argv)


def agent(args: argparse.Namespace) -> int:
    """Run agent mode: collectors and /metrics only."""
    from dashboard_app.agent import Agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        runner = Agent(load_settings(args.env))
    except ConfigError as exc:
        print(f"pulseboard: configuration error\n{exc}", file=sys.stderr)
        return 2
    runner.start()
    atexit.register(runner.stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Pulseboard agent ({args.env}): metrics on http://{args.host}:{args.port}/metrics", flush=True)
    runner.server.run(host=args.host, port=args.port, debug=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "agent":
        return agent(args)
    try:
        app = build(args.env, args.data_dir)
    except ConfigError as exc:
        print(f"pulseboard: configuration error\n{exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so atexit saves the store
    print(f"Pulseboard ({args.env}) on http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


def __getattr__(name: str):
    # gunicorn asks for `server`: build the app only then, from PULSEBOARD_ENV and PULSEBOARD_DATA_DIR.
    if name == "server":
        global server
        server = build(
            os.environ.get("PULSEBOARD_ENV", "development"), os.environ.get("PULSEBOARD_DATA_DIR", "./data")
        ).server
        return server
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
