"""Start-up stays light: `--help` and `--version` load no heavy area (timings: benchmarks/startup.py).

The facade loads each area on first use (``modeltrace.api.__getattr__``). These checks are exact,
not timed: a command module or facade that imports numpy, scipy or a tokenizer package at the top
again makes them fail, whatever the machine's speed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrace import api

#: Modules that cost tens to hundreds of milliseconds each and that no help text needs.
HEAVY = (
    "numpy", "scipy", "torch", "onnx", "gguf", "safetensors", "tokenizers", "sentencepiece", "tiktoken",
    "cryptography", "jsonschema", "jinja2", "httpx", "yaml", "threadpoolctl", "sigstore", "ray", "usearch",
)  # fmt: skip

_LOADED = """
import json, sys
from modeltrace.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["inspect", "--help"], ["label", "--help"]])
def test_help_and_version_load_no_heavy_module(argv: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _LOADED, *argv], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(completed.stderr.strip().splitlines()[-1]))
    assert completed.stdout.strip()
    assert not sorted(name for name in HEAVY if name in loaded)
    areas = {
        name for name in loaded if name.startswith("modeltrace.") and name.split(".")[1] not in ("cli", "api")
    }
    # modeltrace.stats: DEFAULT_ALPHA for option defaults (standard library only, like errors).
    assert areas <= {
        "modeltrace.errors",
        "modeltrace.label",
        "modeltrace.label.vocabulary",
        "modeltrace.stats",
    }


def test_version_option_prints_the_version() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "modeltrace", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert completed.stdout.strip() == api.version()


def test_every_public_name_resolves_to_its_facade_module() -> None:
    for name in api.__all__:
        value = getattr(api, name)
        assert value is getattr(sys.modules[f"modeltrace.api.{api._MODULE_OF[name]}"], name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        api.no_such_name  # noqa: B018


def test_lazy_table_and_type_checking_imports_agree() -> None:
    """Type checkers read the TYPE_CHECKING imports; run time reads _FACADES: both name the same things."""
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    imported = {
        alias.name: node.module.rsplit(".", 1)[1]
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert imported == api._MODULE_OF
