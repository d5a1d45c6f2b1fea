"""The ``modeltrace`` command line. See ``modeltrace --help``."""

from __future__ import annotations

import sys

import click

from modeltrace.cli._app import app, err_console
from modeltrace.errors import ModeltraceError

# Command modules register themselves on ``app`` when imported; one line per module (keep sorted).
from modeltrace.cli import cmd_version  # noqa: E402,F401  isort: skip


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into messages and exit codes.

    Only ``ModeltraceError`` (and click's own usage errors) become short messages; any other
    exception is a bug and propagates with its traceback.
    """
    try:
        result = app(args=argv, standalone_mode=False, prog_name="modeltrace")
    except ModeltraceError as error:
        err_console.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
        sys.exit(error.exit_code)
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["app", "main"]
