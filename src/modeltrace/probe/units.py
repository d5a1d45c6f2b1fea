"""Candidate probe units: short strings whose token counts differ between tokenizer families.

The optimiser (:mod:`.probeset`) picks from these. Hand-written tables cover what is known to
split vocabularies (digit grouping, CJK and kana coverage, emoji and ZWJ sequences, combining
marks, rare words, code), seeded random strings add variety, and :func:`mined_units` adds
"strings that are one token in exactly one vocabulary", found by sampling each vocabulary.

Every unit starts with a space so that repeating it (" X X X") keeps the repeats in separate
pre-tokens for every common regex; the optimiser still verifies linearity per tokenizer.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from modeltrace.probe.references import ReferenceTokenizer


@dataclass(frozen=True)
class CandidateUnit:
    text: str
    category: str


# --- data tables (no logic) ----------------------------------------------------------------------

# fmt: off
_DIGITS = ("1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "2024", "1,234,567", "3.14159")
_HAN = (
    "中华人民共和国", "人工智能", "机器学习模型", "数据库", "我们", "北京大学", "深度学习", "自然语言处理",
    "东京都", "计算机", "开源", "模型", "上海", "经济发展", "龘", "㐀", "𠀀",
)
_KANA = ("ありがとう", "こんにちは", "カタカナ", "ひらがな", "コンピュータ", "ございます", "ラーメン")
_OTHER_SCRIPTS = (
    "안녕하세요", "대한민국", "Здравствуйте", "Россия", "مرحبا", "العربية", "नमस्ते", "हिन्दी",
    "สวัสดี", "Καλημέρα", "שלום", "ქართული", "Tiếng Việt", "İstanbul", "Ελλάδα", "தமிழ்",
)
_EMOJI = (
    "👍", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🇺🇸", "😀", "❤️", "🎉", "🤖", "🙏🏻", "🚀", "🫠", "🧑\u200d💻",
)
_RARE_WORDS = (
    "antidisestablishmentarianism", "floccinaucinihilipilification", "pneumonoultramicroscopic",
    "Zyzzyva", "sesquipedalian", "quokka", "Llanfairpwllgwyngyll", "defenestration", "xylophone",
    "onomatopoeia", "Kubernetes", "PyTorch", "tokenization", "transformers", "embeddings",
    "Bundesverfassungsgericht", "Schifffahrt", "naïveté", "façade", "Ørsted", "Æsir",
)
_CODE = (
    "__init__", "self.assertEqual", "</div>", "===", "->", "::", "#include", "std::vector",
    "console.log", "def", "return;", "camelCaseIdentifier", "snake_case_name", "0x7fffffff",
    "https://", "{\"key\":", "$$", "\\\\", "//", "/*", "*/", "&&", "||", "!==",
)
_PUNCTUATION = (
    "!!!", "...", "?!", "—", "«»", "…", "“”", "、", "。", "！", "（）", "~~~", "±", "°C", "€", "™",
)
# fmt: on

_TABLES: dict[str, tuple[str, ...]] = {
    "digits": _DIGITS,
    "han": _HAN,
    "kana": _KANA,
    "script": _OTHER_SCRIPTS,
    "emoji": _EMOJI,
    "rare-word": _RARE_WORDS,
    "code": _CODE,
    "punctuation": _PUNCTUATION,
}

_WORD = re.compile(r"^ [^\W\d_]{4,24}$")


def table_units(seed: int) -> list[CandidateUnit]:
    """Hand-written units plus seeded random digit runs and Han strings."""
    units = [CandidateUnit(" " + text, category) for category, texts in _TABLES.items() for text in texts]
    rng = random.Random(seed)
    for length in range(2, 10):
        units.append(CandidateUnit(" " + "".join(rng.choice("0123456789") for _ in range(length)), "digits"))
    common_han = [chr(code) for code in range(0x4E00, 0x9FA5)]
    for length in (1, 2, 3, 4):
        for _ in range(3):
            units.append(CandidateUnit(" " + "".join(rng.choice(common_han) for _ in range(length)), "han"))
    return [unit for unit in units if _is_stable(unit.text)]


def mined_units(
    references: dict[str, ReferenceTokenizer], seed: int, samples: int = 4000, per_reference: int = 12
) -> list[CandidateUnit]:
    """Words that are a single token in exactly one reference vocabulary (seeded sampling).

    Each vocabulary is sampled at ``samples`` random ids; entries spelling " word" (a space and
    4-24 letters) are kept when every *other* reference needs more than one token for them.
    """
    rng = random.Random(seed)
    found: list[CandidateUnit] = []
    seen: set[str] = set()
    for name, reference in sorted(references.items()):
        size = reference.vocabulary_size()
        kept = 0
        for token_id in sorted(rng.sample(range(size), min(samples, size))):
            text = reference.token_text(token_id)
            if text is None or text in seen or not _WORD.match(text) or not _is_stable(text):
                continue
            if reference.count(text) != 1:
                continue
            if all(other.count(text) > 1 for other_name, other in references.items() if other_name != name):
                seen.add(text)
                found.append(CandidateUnit(text, f"one-token:{name}"))
                kept += 1
                if kept >= per_reference:
                    break
    return found


def _is_stable(text: str) -> bool:
    """Only NFC-stable text: some servers normalise before counting and the unit must survive it."""
    return unicodedata.normalize("NFC", text) == text and "\ufffd" not in text
