"""`feather serve`: the service under gunicorn, as `make run` starts it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1; env HOST).")
@click.option("--port", type=int, default=None, help="Port (default 3000; env PORT).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="gunicorn workers (default: one per core; env WEB_CONCURRENCY).")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(host: str | None, port: int | None, workers: int | None,
          gunicorn_args: tuple[str, ...]) -> None:
    """Run the service with gunicorn, as `make run` does.

    Settings come from the environment (see the README's configuration table);
    anything after the options is passed to gunicorn.
    """
    env = dict(os.environ)
    for name, value in (("HOST", host), ("PORT", port), ("WEB_CONCURRENCY", workers)):
        if value is not None:
            env[name] = str(value)
    os.execvpe(sys.executable, gunicorn_command(env, gunicorn_args), env)


def gunicorn_command(env: Mapping[str, str], extra: tuple[str, ...] = ()) -> list[str]:
    """The gunicorn command line: the project's gunicorn.conf.py when it is there,
    the same settings as flags when Feather was installed without its source tree."""
    command = [sys.executable, "-m", "gunicorn"]
    config = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    if config.is_file():
        command += ["-c", str(config)]
    else:
        timeout = int(env.get("REQUEST_TIMEOUT_MS", "30000")) // 1000 + 30
        command += [
            "--bind", f"{env.get('HOST', '127.0.0.1')}:{env.get('PORT', '3000')}",
            "--workers", env.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)),
            "--timeout", str(timeout), "--graceful-timeout", "30",
            "--access-logfile", "-", "--error-logfile", "-",
        ]
    return [*command, *extra, "feather_server:create_app()"]
