"""Token strings as the lineage engine sees them: one spelling across tokenizer families.

Anchor tokens are chosen by a hash of their string and matched between two models by string, so two
vocabularies share anchors only where they spell a token the same way. Tokenizer families do not:
the word " the" is ``Ġthe`` in byte-level BPE (GPT-2, Llama 3, Qwen), ``▁the`` in SentencePiece
(Llama 2, T5, Gemma) and ``the`` in WordPiece (BERT), whose word-internal pieces carry ``##`` instead.
:func:`anchor_key` maps every family to one spelling (SentencePiece's): a word-initial piece starts
with ``▁``, a continuation has no marker, byte-level characters are decoded to the text they stand
for. Special tokens (``[CLS]``, ``<s>``, ``<|endoftext|>``) stay as they are. The family is read from
the vocabulary as a whole (:func:`vocabulary_family`), never from one token.

Which tokens become anchors depends on strings only, never on weights, so the normalisation cannot
touch the validity of any test; it decides only how many anchors two models share (their power).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache

#: SentencePiece's word-boundary marker, the canonical spelling of a leading space.
WORD_START = "\u2581"
_BYTE_LEVEL_SPACE = "\u0120"  # "Ġ": byte 0x20 in GPT-2's byte-to-unicode table
_SPECIAL = re.compile(r"^(?:<[^<>]*>|\[[^\[\]]*\]|<\|.*\|>)$")
#: Share of a vocabulary that must carry a family's marker for the family to be recognised.
_FAMILY_SHARE = 0.05


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's reversible byte -> printable character table, inverted (character -> byte)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    characters = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, characters, strict=True)}


def vocabulary_family(tokens: Sequence[str] | None) -> str:
    """``byte-level``, ``sentencepiece``, ``wordpiece`` or ``plain``, from the markers the tokens carry."""
    if not tokens:
        return "plain"
    counts = {
        "byte-level": sum(token.startswith(_BYTE_LEVEL_SPACE) for token in tokens),
        "sentencepiece": sum(token.startswith(WORD_START) for token in tokens),
        "wordpiece": sum(token.startswith("##") and len(token) > 2 for token in tokens),
    }
    family, count = max(counts.items(), key=lambda item: item[1])
    return family if count >= _FAMILY_SHARE * len(tokens) else "plain"


def _decode_byte_level(token: str) -> str:
    decoder = _byte_decoder()
    if not all(char in decoder for char in token):
        return token  # added tokens are stored as plain text
    data = bytes(decoder[char] for char in token)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return token  # a fragment of a multi-byte character: keep the byte-level spelling (unique)


def anchor_key(token: str, family: str) -> str:
    """The family-independent spelling of ``token`` (see the module doc)."""
    if family == "plain" or _SPECIAL.match(token):
        return token
    if family == "wordpiece":
        return token[2:] if token.startswith("##") and len(token) > 2 else WORD_START + token
    if family == "byte-level":
        token = _decode_byte_level(token)
    return token.replace(" ", WORD_START)


def anchor_keys(tokens: Sequence[str]) -> list[str]:
    """:func:`anchor_key` of every token, the family read from ``tokens`` as a whole."""
    family = vocabulary_family(tokens)
    return [anchor_key(token, family) for token in tokens]


def digest(tokens: list[str] | None) -> str | None:
    """SHA-256 over the token strings in id order (equal digests: same vocabulary, same order)."""
    if tokens is None:
        return None
    hasher = hashlib.sha256()
    for token in tokens:
        hasher.update(token.encode("utf-8", "surrogatepass") + b"\x00")
    return hasher.hexdigest()
