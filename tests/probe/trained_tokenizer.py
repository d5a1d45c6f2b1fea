"""A SentencePiece tokenizer trained in the tests: "a tokenizer that is not in the library".

The probe must say "unknown" for a SentencePiece vocabulary it has never seen, and must name one
once it is added with ``tokenizers add``. Any such vocabulary will do, so instead of shipping
a third party's ``tokenizer.model`` (Llama 2's carries Meta's licence) the tests train a small
byte-fallback BPE model here, the way Llama-style tokenizers are built, on a seeded synthetic
corpus. Training takes about a second and happens once per test session.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from functools import cache
from pathlib import Path

#: The family name the fake endpoint and the tests use for the trained model.
FAMILY = "trained-spm"

# Syllables for pseudo-words, plus real words in other scripts, so that merges form at several
# lengths and the probe's CJK / emoji / digit units land on byte fallback or learned pieces alike.
_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ver", "an", "ing", "tion", "the", "and", "st",
    "er", "qu", "ex", "on", "al", "re", "de", "co", "mp", "ut", "is", "or", "le", "ab", "ize",
)  # fmt: skip
_FOREIGN = ("人工智能", "模型", "ありがとう", "안녕하세요", "Здравствуйте", "नमस्ते", "Ελλάδα", "naïveté")
_PUNCTUATION = (".", ",", "!", "?", ";", ":")


def corpus(sentences: int = 6000, seed: int = 7) -> str:
    """A fixed pseudo-text (the same for every run: ``random.Random`` is stable across versions)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(sentences):
        words = []
        for _ in range(rng.randint(4, 14)):
            roll = rng.random()
            if roll < 0.06:
                words.append(rng.choice(_FOREIGN))
            elif roll < 0.12:
                words.append(str(rng.randint(0, 99999)))
            else:
                words.append("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
        sentence = " ".join(words)
        lines.append(sentence[0].upper() + sentence[1:] + rng.choice(_PUNCTUATION))
    return "\n".join(lines) + "\n"


@cache
def sentencepiece_model() -> Path:
    """Train (once per process) and return the path of a 2,000-piece byte-fallback BPE model."""
    import sentencepiece

    folder = Path(tempfile.mkdtemp(prefix="modeltrace-spm-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    text = folder / "corpus.txt"
    text.write_text(corpus(), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(folder / "tokenizer"),
        model_type="bpe",
        vocab_size=2000,
        byte_fallback=True,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return folder / "tokenizer.model"
