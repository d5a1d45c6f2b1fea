"""The Typer application object and the output helpers every command shares.

Commands live in ``cli/cmd_*.py``, one module per command or command group, and import only
:mod:`modeltrace.api`, :mod:`modeltrace.errors` and the shared ``cli/_*.py`` helpers, never another
command (the ``cli-facade`` and ``cli-commands-apart`` contracts in pyproject.toml). Errors from
the library (``ModeltraceError``) become a one-line message on stderr and the family's exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from modeltrace import api
from modeltrace.cli._console import ReadableConsole

app = typer.Typer(
    name="modeltrace",
    help="Prove where an AI model came from: inspect, fingerprint, compare, probe, label, license.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Human-readable output goes to stdout; progress and errors to stderr so --json stays clean.
#: Tables keep their names whole at any width and in files or pipes (see cli/_console.py).
console = ReadableConsole(highlight=False)
err_console = ReadableConsole(stderr=True, highlight=False)


def emit_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout (no Rich markup, safe for scripts)."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def print_warnings(result: dict[str, Any]) -> None:
    """Warnings of the weight reader on stderr (``--json`` carries them as ``warnings``)."""
    for warning in result.get("warnings", []):
        err_console.print(f"[bold yellow]warning:[/] {warning}", markup=True, highlight=False)
    if result.get("unsafe_pickle"):
        err_console.print(
            "[bold yellow]warning:[/] this file holds a pickle modeltrace did not read; loading it with "
            "torch.load or another tool may execute code (unsafe_pickle: true)",
            markup=True,
            highlight=False,
        )


#: ``--db``, shared by the commands that use the registry.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (postgresql://...) or SQLite path; default $MODELTRACE_DB, else "
        "registry.sqlite under $MODELTRACE_HOME.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def p_text(log10_p: float | None) -> str:
    """A p-value for people: ``0.0123``, or ``1e-856`` below float range; ``n/a`` when absent.

    The service's pages print the same text: both call ``api.format_p_value``.
    """
    return api.format_p_value(log10_p)


#: ``--follow-symlinks``, shared by the commands that read model folders.
FollowSymlinks = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks",
        help="Follow symlinks that leave the model folder (default: only into the enclosing "
        "Hugging Face cache's blobs/).",
    ),
]


@contextlib.contextmanager
def symlinks(follow: bool) -> Iterator[None]:
    """Read model folders under the symlink rule that ``--follow-symlinks`` chose."""
    from modeltrace import api

    with api.symlink_policy("always" if follow else "hf-cache"):
        yield


def human_bytes(count: int | float) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.2f} {unit}"
        value /= 1000
    return f"{value:.2f} TB"  # pragma: no cover


def human_count(count: int | float) -> str:
    """1.03T / 32.6B / 22.7M style parameter counts."""
    value = float(count)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}" if value / scale < 100 else f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def _print_version(requested: bool) -> None:
    if requested:
        console.print(api.version())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the modeltrace version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Prove where an AI model came from."""
