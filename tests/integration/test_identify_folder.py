"""`identify --against FOLDER` ranks the folder's models, skipping the suspect when it sits there too."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrace import api
from modeltrace.errors import UsageError


def test_identify_skips_the_suspect_and_names_its_base(tmp_path: Path) -> None:
    zoo = api.build_demo_zoo(tmp_path / "home")
    result = api.identify(zoo / "tiny-llama-chat", zoo)
    names = [Path(row["candidate"]).name for row in result["candidates"]]
    assert "tiny-llama-chat" not in names
    assert Path(result["closest_ancestor"]).name in ("tiny-llama", "tiny-llama.gguf")
    verdicts = {Path(row["candidate"]).name: row["verdict"] for row in result["candidates"]}
    assert verdicts["tiny-llama"] == "related"
    assert verdicts["tiny-moe"] == "unrelated"


def test_identify_against_only_itself_is_a_usage_error(tmp_path: Path) -> None:
    zoo = api.build_demo_zoo(tmp_path / "home")
    with pytest.raises(UsageError, match="suspect itself"):
        api.identify(zoo / "tiny-llama", [zoo / "tiny-llama"])
