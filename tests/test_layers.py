"""The layer directions of docs/DEVELOPING.md hold: `lint-imports` keeps every contract of pyproject.toml.

The contracts live in ``[tool.importlinter]``; this test runs them so that ``make test`` and CI do.
The second test breaks a copy of the package in two known ways and checks the contracts say so,
so a contract that can no longer fail (a typo in a module name, a too-wide ignore) is noticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: ``lint-imports`` of the installed import-linter, without its cache folder (tests write no files
#: into the checkout).
_LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))",
]


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_LINT, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_every_layer_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_a_command_reaching_past_the_facade(tmp_path: Path) -> None:
    """A command importing another command and a reader, and lineage importing the facade, break
    the contracts; the copy of the package shadows the installed one through PYTHONPATH."""
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "modeltrace", copy / "modeltrace", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    label = copy / "modeltrace" / "cli" / "cmd_label.py"
    label.write_text(
        label.read_text()
        + "\nfrom modeltrace.cli import cmd_digest  # noqa\nfrom modeltrace.formats import limits  # noqa\n"
    )
    display = copy / "modeltrace" / "lineage" / "display.py"
    display.write_text(display.read_text() + "\nfrom modeltrace.api import _blas  # noqa\n")

    result = _lint(tmp_path, env={**os.environ, "PYTHONPATH": str(copy)})

    assert result.returncode != 0, result.stdout
    assert "modeltrace.cli.cmd_label -> modeltrace.cli.cmd_digest" in result.stdout
    assert "modeltrace.cli.cmd_label -> modeltrace.formats.limits" in result.stdout
    assert "modeltrace.lineage.display -> modeltrace.api._blas" in result.stdout


def test_every_cli_command_is_in_the_independence_contract() -> None:
    """import-linter has no `cmd_*` wildcard, so a new command must be listed by hand: this notices
    one that was not (it would otherwise be free to import another command)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {contract["id"]: contract for contract in config["tool"]["importlinter"]["contracts"]}
    listed = set(contracts["cli-commands-apart"]["modules"])
    commands = {f"modeltrace.cli.{path.stem}" for path in (ROOT / "src/modeltrace/cli").glob("cmd_*.py")}
    assert commands == listed
