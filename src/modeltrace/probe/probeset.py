"""The probe set: which units to send, chosen offline from the tokenizer library.

Pipeline position: library -> **probe set** -> online probe -> scoring. A unit is useful only
if its token count is *exactly linear* in the repeat count for every reference, in every chat
context it may land in (so the slope between two repeat counts is the unit's own count and the
hidden template / system prompt cancels), and if it splits pairs of families. The optimiser
greedily picks units that raise the worst-covered pair first, so every pair of families differs
on as many units as possible. It is deterministic (seeded) and cached under
``$MODELTRACE_HOME/probe/`` keyed by the library digest and :data:`PROBESET_VERSION`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from modeltrace.probe.references import ReferenceTokenizer
from modeltrace.probe.units import CandidateUnit, mined_units, table_units

#: Bump when the selection algorithm or candidate tables change, so old caches are ignored.
PROBESET_VERSION = 1
SEED = 20260101
#: The two repeat counts sent online; their difference (3) also exposes non-linear counters.
REPEATS = (1, 4)
DEFAULT_UNIT_COUNT = 24
#: Repeat counts and surrounding contexts a unit must be linear in, for every reference.
_CHECK_REPEATS = (1, 2, 3, 4, 5)
_CONTEXTS = ("{}", "\n{}", "user\n{}", "{}\n", "[INST]{} [/INST]", "System prompt.\n\nQuestion:{}\nAnswer:")
#: Text whose exact token ids and pieces are stored per reference, for /tokenize and echo evidence.
ID_PROBE_TEXT = " 12345 中华人民共和国 👍🏽 antidisestablishmentarianism नमस्ते"


@dataclass(frozen=True)
class ProbeUnit:
    text: str
    category: str
    #: Reference name -> exact tokens per repeat (the slope).
    expected: dict[str, int]


@dataclass(frozen=True)
class ProbeSet:
    library_digest: str
    references: tuple[str, ...]
    units: tuple[ProbeUnit, ...]  # most useful first: a budget cut keeps a prefix
    repeats: tuple[int, int]
    #: Fewest units on which any two references differ (over all ``units``) and those pairs.
    min_pair_distance: int
    weakest_pairs: tuple[tuple[str, str], ...]
    #: Groups of references no candidate unit can tell apart (identical counts everywhere).
    indistinguishable: tuple[tuple[str, ...], ...]
    expected_ids: dict[str, list[int]]
    expected_pieces: dict[str, list[str]]

    def to_dict(self) -> dict[str, object]:
        return {
            "version": PROBESET_VERSION,
            "library_digest": self.library_digest,
            "references": list(self.references),
            "repeats": list(self.repeats),
            "min_pair_distance": self.min_pair_distance,
            "weakest_pairs": [list(pair) for pair in self.weakest_pairs],
            "indistinguishable": [list(group) for group in self.indistinguishable],
            "units": [{"text": u.text, "category": u.category, "expected": u.expected} for u in self.units],
            "expected_ids": self.expected_ids,
            "expected_pieces": self.expected_pieces,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ProbeSet:  # type: ignore[type-arg]
        return cls(
            library_digest=str(data["library_digest"]),
            references=tuple(data["references"]),
            units=tuple(ProbeUnit(u["text"], u["category"], dict(u["expected"])) for u in data["units"]),
            repeats=(int(data["repeats"][0]), int(data["repeats"][1])),
            min_pair_distance=int(data["min_pair_distance"]),
            weakest_pairs=tuple((a, b) for a, b in data["weakest_pairs"]),
            indistinguishable=tuple(tuple(group) for group in data["indistinguishable"]),
            expected_ids={k: list(v) for k, v in data["expected_ids"].items()},
            expected_pieces={k: list(v) for k, v in data["expected_pieces"].items()},
        )


def unit_slope(reference: ReferenceTokenizer, text: str) -> int | None:
    """Tokens per repeat of ``text``, or None if the count is not exactly linear in every context."""
    slope: int | None = None
    for context in _CONTEXTS:
        counts = [reference.count(context.format(text * k)) for k in _CHECK_REPEATS]
        step = counts[1] - counts[0]
        if any(b - a != step for a, b in itertools.pairwise(counts)):
            return None
        if slope is None:
            slope = step
        elif step != slope:
            return None
    return slope if slope is not None and slope > 0 else None


def build_probe_set(
    references: dict[str, ReferenceTokenizer], library_digest: str, unit_count: int = DEFAULT_UNIT_COUNT
) -> ProbeSet:
    """Choose ``unit_count`` linear, discriminative units for the given references (deterministic)."""
    names = tuple(sorted(references))
    candidates = table_units(SEED) + mined_units(references, SEED)
    table: list[tuple[CandidateUnit, dict[str, int]]] = []
    for candidate in candidates:
        slopes = {name: unit_slope(references[name], candidate.text) for name in names}
        if all(value is not None for value in slopes.values()):
            table.append(
                (candidate, {name: int(value) for name, value in slopes.items() if value is not None})
            )
    pairs = list(itertools.combinations(names, 2))
    chosen = _greedy_select(table, pairs, unit_count)
    distances = {pair: sum(1 for _, exp in chosen if exp[pair[0]] != exp[pair[1]]) for pair in pairs}
    min_distance = min(distances.values(), default=0)
    return ProbeSet(
        library_digest=library_digest,
        references=names,
        units=tuple(ProbeUnit(c.text, c.category, exp) for c, exp in chosen),
        repeats=REPEATS,
        min_pair_distance=min_distance,
        weakest_pairs=tuple(pair for pair, d in distances.items() if d == min_distance),
        indistinguishable=_indistinguishable(table, names),
        expected_ids={name: references[name].encode(ID_PROBE_TEXT) for name in names},
        expected_pieces={name: _pieces(references[name], ID_PROBE_TEXT) for name in names},
    )


def _greedy_select(
    table: list[tuple[CandidateUnit, dict[str, int]]], pairs: list[tuple[str, str]], unit_count: int
) -> list[tuple[CandidateUnit, dict[str, int]]]:
    """Greedy max-min pair coverage with a per-category cap for variety (helps the open-set case).

    Gain of a unit = sum over the pairs it splits of 1/(1+coverage)^2, so a pair nobody splits yet
    outweighs several already-split pairs; a small bonus for more distinct values breaks ties
    toward units that separate many families at once. Order is seeded, so ties are reproducible.
    """
    rng = random.Random(SEED)
    pool = list(table)
    rng.shuffle(pool)
    coverage = dict.fromkeys(pairs, 0)
    per_category: dict[str, int] = {}
    category_cap = max(3, unit_count // 4)
    chosen: list[tuple[CandidateUnit, dict[str, int]]] = []
    while pool and len(chosen) < unit_count:
        best_index, best_gain = -1, 0.0
        for index, (candidate, expected) in enumerate(pool):
            family = candidate.category.split(":")[0]
            if per_category.get(family, 0) >= category_cap:
                continue
            gain = sum(1.0 / (1 + coverage[p]) ** 2 for p in pairs if expected[p[0]] != expected[p[1]])
            gain += 0.001 * len(set(expected.values()))
            if gain > best_gain:
                best_index, best_gain = index, gain
        if best_index < 0:
            break
        candidate, expected = pool.pop(best_index)
        chosen.append((candidate, expected))
        family = candidate.category.split(":")[0]
        per_category[family] = per_category.get(family, 0) + 1
        for pair in pairs:
            if expected[pair[0]] != expected[pair[1]]:
                coverage[pair] += 1
    return chosen


def _indistinguishable(
    table: list[tuple[CandidateUnit, dict[str, int]]], names: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    signature = {name: tuple(expected[name] for _, expected in table) for name in names}
    groups: dict[tuple[int, ...], list[str]] = {}
    for name in names:
        groups.setdefault(signature[name], []).append(name)
    return tuple(tuple(group) for group in groups.values() if len(group) > 1)


def _pieces(reference: ReferenceTokenizer, text: str) -> list[str]:
    return [reference.token_text(token_id) or "" for token_id in reference.encode(text)]


# --- cache ---------------------------------------------------------------------------------------


def cache_key(library_digest: str, unit_count: int) -> str:
    raw = f"{library_digest}:{PROBESET_VERSION}:{SEED}:{unit_count}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def cache_path(home: Path, library_digest: str, unit_count: int = DEFAULT_UNIT_COUNT) -> Path:
    return home / "probe" / f"probeset-{cache_key(library_digest, unit_count)}.json"


def read_cached(path: Path, library_digest: str) -> ProbeSet | None:
    """The cached probe set, or None when absent, stale or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != PROBESET_VERSION or data.get("library_digest") != library_digest:
            return None
        return ProbeSet.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def write_cache(path: Path, probe_set: ProbeSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(probe_set.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(path)
