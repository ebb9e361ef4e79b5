"""The `feather` command: one group, one module per command (group).

``feather --help``, ``compress``, ``convert`` and ``info`` import no Flask: they run on
``feather_core`` and the field schema alone.
"""

from __future__ import annotations

import importlib
import sys

import click

from feather_cli.compress import compress, convert
from feather_cli.info import info
from feather_cli.options import option_name
from feather_cli.serve import gunicorn_command, serve
from feather_core import __version__


class _Commands(click.Group):
    """The group, with the account commands loaded only when they run: they need the
    accounts database and SQLAlchemy, which the image commands never do."""

    LAZY = {"keys": "feather_cli.keys:keys_group", "sweep": "feather_cli.keys:sweep_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, _, name = self.LAZY[cmd_name].partition(":")
            found: click.Command = getattr(importlib.import_module(module), name)
            return found
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="feather")
def cli() -> None:
    """Feather: compress, convert and inspect images from the command line,
    or run the Feather service."""


for command in (compress, convert, info, serve):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (`feather`)."""
    try:
        cli.main(args=argv, prog_name="feather")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["cli", "gunicorn_command", "main", "option_name"]
