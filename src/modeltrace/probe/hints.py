"""Passive identity hints: what an endpoint says about itself without being asked.

Hints are reported as hints, verbatim, never as verdicts: a ``model`` field or an ``x-model``
header can be set to anything. They matter because deployments leak: a served model id such as
``kimi-k2p5-rl-0317``, a vendor header, or an error message from the inference server.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from modeltrace.probe.client import Exchange

#: Transport headers that say nothing about the model; every other header is kept as a hint.
_BORING_HEADERS = frozenset(
    {"date", "content-length", "content-type", "connection", "transfer-encoding", "keep-alive", "vary"}
)
#: Headers known to name the model or the serving stack; flagged so reports can highlight them.
IDENTITY_HEADERS = frozenset(
    {"x-model", "openai-model", "x-model-id", "x-served-model", "server", "via", "x-powered-by",
     "openai-organization", "x-litellm-model-id", "x-vllm-version", "x-backend"}
)  # fmt: skip
_TOKEN_ALPHABET = re.compile(r"^[A-Za-z0-9]+$")
_HEX = re.compile(r"^[0-9a-fA-F]{6,}$")
#: A lower-case run this long with this much entropy per character is not a word (English words of
#: 16+ letters repeat letters: "internationalization" has 3.1 bits; 16 random letters ~3.7).
_LONG_RUN, _RANDOM_BITS_PER_CHAR = 16, 3.4
_NO_WORD_IS_THIS_LONG = 24
_MAX_HINT = 2000


@dataclass(frozen=True)
class Hint:
    source: str  # which request revealed it
    field: str  # e.g. "model", "id-prefix", "header:x-model", "error-body"
    value: str  # verbatim (truncated to 2,000 characters), API key redacted
    identity: bool  # a field that names a model or serving stack by design

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "field": self.field, "value": self.value, "identity": self.identity}


def looks_random(part: str) -> bool:
    """Whether one ``-``/``_``-separated part of a response id is a nonce, judged by its shape.

    By shape, not by the presence of digits: llama.cpp's ids are ``chatcmpl-`` + 32 characters
    drawn from ``[0-9A-Za-z]``, which can contain no digit at all (``chatcmpl-acBUzgWyQe...``).
    A part is random when it is (a) digits only, or hex of 6+ characters, (b) alphanumeric of 8+
    characters with a digit, or with upper case after lower case (a word is lower case or
    capitalised, base62 noise is mixed), or (c) a lower-case run of 24+ characters, or of 16+
    whose letters are spread too evenly (Shannon entropy per character) to be a word.
    """
    if _HEX.match(part) or part.isdecimal():  # Ollama: chatcmpl-<0..998>; timestamps
        return True
    if not _TOKEN_ALPHABET.match(part) or len(part) < 8:
        return False
    if any(char.isdigit() for char in part) or re.search(r"[a-z][A-Z]", part):
        return True
    if len(part) >= _NO_WORD_IS_THIS_LONG:
        return True
    return len(part) >= _LONG_RUN and _entropy_bits(part.lower()) >= _RANDOM_BITS_PER_CHAR


def _entropy_bits(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def id_prefix(response_id: str) -> str:
    """``chatcmpl-3f9a8c2e1b`` -> ``chatcmpl``: drop trailing random-looking parts, keep the rest.

    A part that is random but not trailing (``cmpl-<nonce>-kimi``) becomes ``*`` so the nonce
    never reaches the report while the words around it still do.
    """
    parts = re.split(r"([-_])", response_id)
    while len(parts) > 1 and looks_random(parts[-1]):
        parts = parts[:-2]
    return "".join("*" if index % 2 == 0 and looks_random(part) else part for index, part in enumerate(parts))


def from_exchange(exchange: Exchange, source: str) -> list[Hint]:
    """Every hint in one response: body fields (model, id prefix, fingerprint, owner) and headers."""
    hints = [
        Hint(source, f"header:{name}", value[:_MAX_HINT], name in IDENTITY_HEADERS)
        for name, value in sorted(exchange.headers.items())
        if name not in _BORING_HEADERS
    ]
    body = exchange.json()
    if isinstance(body, dict):
        hints.extend(_body_hints(body, source))
    if not exchange.ok and exchange.text:
        hints.append(Hint(source, "error-body", exchange.text[:_MAX_HINT], False))
    return hints


def _body_hints(body: dict, source: str) -> list[Hint]:  # type: ignore[type-arg]
    hints = []
    if isinstance(body.get("model"), str):
        hints.append(Hint(source, "model", body["model"][:_MAX_HINT], True))
    if isinstance(body.get("id"), str):
        hints.append(Hint(source, "id-prefix", id_prefix(body["id"])[:_MAX_HINT], False))
    if isinstance(body.get("system_fingerprint"), str):
        hints.append(Hint(source, "system_fingerprint", body["system_fingerprint"][:_MAX_HINT], True))
    if isinstance(body.get("data"), list):  # GET /v1/models
        for entry in body["data"]:
            if isinstance(entry, dict):
                for key in ("id", "owned_by", "root", "parent"):
                    if isinstance(entry.get(key), str) and entry[key]:
                        hints.append(Hint(source, f"models.{key}", entry[key][:_MAX_HINT], True))
    return hints


def deduplicate(hints: list[Hint]) -> list[Hint]:
    """Keep the first occurrence of each (field, value): the same header on every reply is one hint."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for hint in hints:
        if (hint.field, hint.value) not in seen:
            seen.add((hint.field, hint.value))
            unique.append(hint)
    return unique
