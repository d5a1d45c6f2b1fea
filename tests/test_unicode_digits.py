"""Text that `str.isdigit` calls a number but `int` refuses (superscripts such as "¹") must be
treated as not-a-number, never reach `int()` and crash: the OpenAPI fuzz test found a registry
reference "¹" answered with HTTP 500. Every parser of untrusted numbers checks `isdecimal`
instead, whose characters are exactly those `int` accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modeltrace import api
from modeltrace.errors import ModeltraceError
from modeltrace.formats import remote_redirects, remote_status
from modeltrace.probe import client

SUPERSCRIPTS = ["¹", "²³", "1²"]


@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_a_registry_reference_in_superscripts_is_not_found(tmp_path: Path, text: str) -> None:
    assert text.isdigit() and not text.isdecimal()
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with api.open_registry(url) as registry, pytest.raises(ModeltraceError, match="No model"):
        registry.get(text)


@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_retry_after_in_superscripts_is_ignored(text: str) -> None:
    assert client._parse_retry_after(text) is None
    assert remote_status._retry_after_seconds(text) is None


@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_a_hub_size_in_superscripts_is_unknown(text: str) -> None:
    # as a server would send it: header bytes, which httpx decodes as latin-1
    response = httpx.Response(302, headers={"X-Linked-Size": text.encode("latin-1")})
    assert remote_redirects.hub_headers(response)[1] is None
