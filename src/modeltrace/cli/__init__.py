"""The ``modeltrace`` command line. See ``modeltrace --help``."""

from __future__ import annotations

import sys

from modeltrace.cli._app import app, err_console
from modeltrace.errors import ModeltraceError

# Command modules register themselves on ``app`` when imported; one line per module (keep sorted).
from modeltrace.cli import cmd_compare  # noqa: F401  isort: skip
from modeltrace.cli import cmd_demo  # noqa: F401  isort: skip
from modeltrace.cli import cmd_digest  # noqa: F401  isort: skip
from modeltrace.cli import cmd_fingerprint  # noqa: F401  isort: skip
from modeltrace.cli import cmd_graph  # noqa: F401  isort: skip
from modeltrace.cli import cmd_identify  # noqa: F401  isort: skip
from modeltrace.cli import cmd_inspect  # noqa: F401  isort: skip
from modeltrace.cli import cmd_label  # noqa: F401  isort: skip
from modeltrace.cli import cmd_license  # noqa: F401  isort: skip
from modeltrace.cli import cmd_lineage  # noqa: F401  isort: skip
from modeltrace.cli import cmd_probe  # noqa: F401  isort: skip
from modeltrace.cli import cmd_registry  # noqa: F401  isort: skip
from modeltrace.cli import cmd_royalties  # noqa: F401  isort: skip
from modeltrace.cli import cmd_scan  # noqa: F401  isort: skip
from modeltrace.cli import cmd_serve  # noqa: F401  isort: skip
from modeltrace.cli import cmd_token  # noqa: F401  isort: skip
from modeltrace.cli import cmd_tokenizers  # noqa: F401  isort: skip
from modeltrace.cli import cmd_version  # noqa: F401  isort: skip
from modeltrace.cli import cmd_zoo  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into messages and exit codes.

    Typer's standalone mode handles usage errors (exit 2) and ``--help``. Only ``ModeltraceError``
    becomes a short message here; any other exception is a bug and keeps its traceback.
    """
    try:
        app(args=argv, prog_name="modeltrace")
    except ModeltraceError as error:
        err_console.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
        sys.exit(error.exit_code)


__all__ = ["app", "main"]
