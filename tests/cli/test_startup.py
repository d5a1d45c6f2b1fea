"""Start-up stays light: `--help` and `--version` load no heavy area (timings: benchmarks/startup.py).

The facade loads each area on first use (``modeltrace.api.__getattr__``). These checks are exact,
not timed: a command module or facade that imports numpy, scipy or a tokenizer package at the top
again makes them fail, whatever the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
