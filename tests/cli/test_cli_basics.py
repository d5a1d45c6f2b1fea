from __future__ import annotations

import subprocess
import sys

import pytest

from modeltrace import __version__
from modeltrace.cli import main
from modeltrace.errors import (
    CorruptFileError,
    FormatError,
    ModeltraceError,
    UnsafePickleError,
)


def test_version_command_prints_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "modeltrace", "--help"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0
    assert "modeltrace" in completed.stdout


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def test_error_families_subclass_builtins() -> None:
    error = CorruptFileError("m.safetensors", "header length 9e18 exceeds file size 1,204")
    assert isinstance(error, FormatError)
    assert isinstance(error, ValueError)
    assert isinstance(error, ModeltraceError)
    assert "m.safetensors" in str(error)
    unsafe = UnsafePickleError("x.bin", "os.system")
    assert "os.system" in str(unsafe)
