"""The guard `.ci/run` relies on: with --fail-on-data-skips a skip for missing data fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_TESTS = """
import pytest

def test_needs_a_file():
    pytest.skip("tests/data/absent.json not found")

def test_needs_a_server():
    pytest.skip("needs PostgreSQL: initdb not found on this machine")

def test_runs():
    assert True
"""


def _pytest(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # Under .ci/run this suite itself runs with PYTEST_ADDOPTS=--fail-on-data-skips: keep it out.
    environment = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *options],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def test_a_data_skip_fails_the_guarded_run_and_a_machine_skip_does_not(tmp_path: Path) -> None:
    shutil.copyfile(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(_TESTS, encoding="utf-8")

    unguarded = _pytest(tmp_path)
    assert unguarded.returncode == 0, unguarded.stdout

    guarded = _pytest(tmp_path, "--fail-on-data-skips")
    assert guarded.returncode == 1, guarded.stdout
    assert "test_needs_a_file: tests/data/absent.json not found" in guarded.stdout
    assert (
        "test_needs_a_server"
        not in guarded.stdout.split("skipped for missing data")[1].split("short test")[0]
    )

    (tmp_path / "test_skips.py").write_text(
        _TESTS.replace("tests/data/absent.json not found", "x on this machine")
    )
    assert _pytest(tmp_path, "--fail-on-data-skips").returncode == 0
