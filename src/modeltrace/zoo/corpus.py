"""The zoo's training text: a seeded probabilistic grammar over a made-up word vocabulary.

Everything here is pure Python + numpy and deterministic given a seed, so two builds of the zoo
see the same tokens. The grammar has enough structure for a tiny transformer to learn more than
word frequencies (nouns belong to topics and pick verbs and adjectives of their topic), and a
second *domain* grammar re-weights the topics and uses words the base corpus never shows, so
fine-tuning on it really moves the weights.

The tokenizer is word-level and is written as a Hugging Face ``tokenizer.json`` (``WordLevel``
model), the file the lineage engine reads to align vocabularies by token strings.
"""

from __future__ import annotations

import bisect
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ("<unk>", "<bos>", "<eos>", "<pad>")
PUNCTUATION = (".", ",")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "kl", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "s", "l", "m", "k")

#: Word classes and how many words each has. ``domain_*`` words appear only in the domain corpus.
WORD_CLASSES: dict[str, int] = {
    "det": 6, "noun": 120, "verb": 80, "adj": 60, "adv": 24, "prep": 12, "conj": 6,
    "domain_noun": 40, "domain_verb": 24,
}  # fmt: skip
TOPICS = 6


def pseudo_words(count: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    """``count`` distinct pronounceable nonsense words (no clash with ``taken``)."""
    words: list[str] = []
    while len(words) < count:
        syllables = int(rng.integers(1, 4))
        word = (
            "".join(
                _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                for _ in range(syllables)
            )
            + _CODAS[rng.integers(len(_CODAS))]
        )
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


@dataclass(frozen=True)
class Lexicon:
    """The word list by class, and the token ids of the whole vocabulary."""

    words: dict[str, tuple[str, ...]]
    vocab: tuple[str, ...]  # id -> token string

    @property
    def token_ids(self) -> dict[str, int]:
        return {token: index for index, token in enumerate(self.vocab)}


def make_lexicon(seed: int = 0) -> Lexicon:
    """The vocabulary: special tokens, punctuation, then every word class in a fixed order."""
    rng = np.random.default_rng([seed, 7001])
    taken: set[str] = set()
    words = {name: tuple(pseudo_words(count, rng, taken)) for name, count in WORD_CLASSES.items()}
    vocab = (*SPECIAL_TOKENS, *PUNCTUATION, *(word for group in words.values() for word in group))
    return Lexicon(words=words, vocab=vocab)


def _zipf_cdf(count: int, exponent: float = 1.1) -> list[float]:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return list(np.cumsum(weights / weights.sum()))


class Grammar:
    """Sentences ``det [adj] noun verb [det [adj] noun] [prep det noun] [adv] .`` with topics.

    Each noun has a topic; the verb and adjectives are drawn from words of the subject's topic
    with high probability, which gives a model something to learn beyond unigram counts.
    ``domain=True`` swaps in the domain-only nouns and verbs for half of the slots and favours
    other topics. Sampling uses :class:`random.Random` (scalar draws are ~20x cheaper than numpy's
    and its ``random()`` sequence is stable across Python versions).
    """

    def __init__(self, lexicon: Lexicon, domain: bool) -> None:
        self.domain = domain
        ids = lexicon.token_ids
        self.pools: dict[tuple[str, int | None], tuple[list[int], list[float]]] = {}
        for name, group in lexicon.words.items():
            group_ids = [ids[word] for word in group]
            self.pools[name, None] = (group_ids, _zipf_cdf(len(group_ids)))
            for topic in range(TOPICS):
                topic_ids = group_ids[topic::TOPICS]  # the words of this topic
                self.pools[name, topic] = (topic_ids, _zipf_cdf(len(topic_ids)))
        self.period, self.comma = ids["."], ids[","]
        topic_weights = np.linspace(1.0, 3.0, TOPICS) if domain else np.linspace(3.0, 1.0, TOPICS)
        self.topic_cdf = list(np.cumsum(topic_weights / topic_weights.sum()))

    def _pick(self, rng: random.Random, name: str, topic: int | None = None) -> int:
        if topic is not None and rng.random() >= 0.85:
            topic = None  # an off-topic word now and then
        pool, cdf = self.pools[name, topic]
        return pool[min(bisect.bisect(cdf, rng.random()), len(pool) - 1)]

    def _noun_phrase(self, rng: random.Random, topic: int, out: list[int]) -> None:
        out.append(self._pick(rng, "det"))
        if rng.random() < 0.4:
            out.append(self._pick(rng, "adj", topic))
        use_domain = self.domain and rng.random() < 0.5
        out.append(self._pick(rng, "domain_noun" if use_domain else "noun", topic))

    def sentence(self, rng: random.Random) -> list[int]:
        topic = min(bisect.bisect(self.topic_cdf, rng.random()), TOPICS - 1)
        out: list[int] = []
        self._noun_phrase(rng, topic, out)
        use_domain = self.domain and rng.random() < 0.5
        out.append(self._pick(rng, "domain_verb" if use_domain else "verb", topic))
        if rng.random() < 0.7:
            self._noun_phrase(rng, topic, out)
        if rng.random() < 0.3:
            out.append(self._pick(rng, "prep"))
            self._noun_phrase(rng, (topic + 1) % TOPICS, out)
        if rng.random() < 0.3:
            out.append(self._pick(rng, "adv", topic))
        if rng.random() < 0.15:
            out.extend((self.comma, self._pick(rng, "conj")))
            self._noun_phrase(rng, topic, out)
            out.append(self._pick(rng, "verb", topic))
        out.append(self.period)
        return out


def generate_tokens(lexicon: Lexicon, count: int, seed: int, domain: bool = False) -> np.ndarray:
    """A stream of at least ``count`` token ids (whole sentences), deterministic given ``seed``."""
    rng = random.Random(seed * 4 + 2 + int(domain))
    grammar = Grammar(lexicon, domain)
    stream: list[int] = []
    while len(stream) < count:
        stream.extend(grammar.sentence(rng))
    return np.array(stream, dtype=np.int64)


def sample_windows(tokens: np.ndarray, batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``batch`` random windows of ``length`` consecutive tokens: a ``[batch, length]`` array."""
    starts = rng.integers(0, len(tokens) - length, size=batch)
    return np.stack([tokens[start : start + length] for start in starts])


# --- tokenizer.json -----------------------------------------------------------------------------


def tokenizer_json(vocab: list[str] | tuple[str, ...]) -> dict[str, object]:
    """A Hugging Face ``tokenizer.json`` for a word-level vocabulary (id = position in ``vocab``)."""
    specials = [token for token in vocab if token in SPECIAL_TOKENS]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": vocab.index(token),
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for token in specials
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "WordLevel",
            "vocab": {token: index for index, token in enumerate(vocab)},
            "unk_token": "<unk>",
        },
    }


def write_tokenizer(folder: Path, vocab: list[str] | tuple[str, ...]) -> Path:
    path = folder / "tokenizer.json"
    path.write_text(json.dumps(tokenizer_json(vocab), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
