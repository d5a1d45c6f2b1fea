"""Which base MLP block each suspect block is paired with: every block pair, or a shortlist.

Exhaustive (the reference): the block similarity (mean best-match unit similarity) of every block pair,
then a one-to-one assignment for dense-to-dense with no more suspect layers than base layers and the
most similar base block otherwise. Its cost is every suspect unit against every base unit: for two
Kimi-K2-shaped fingerprints (541 blocks of 128 units) about 6 TFLOP, minutes on two cores.

Shortlist (when the exhaustive products exceed :data:`EXHAUSTIVE_UNIT_PAIRS` and the pairing is a
per-block argmax): each block is summarised by one vector that is blind to unit order and to the
sign of each unit's ``up`` row (mean gate feature and mean absolute up feature; the mean feature for
ungated MLPs), the summaries are centred per model, and each suspect block's candidates are its
:data:`SHORTLIST` base blocks of highest summary cosine plus the base block at the same layer and
expert index. The block similarity is computed exactly for the candidates only, and each suspect
block takes the most similar candidate. The pairing equals the exhaustive one whenever the
exhaustive argmax lies in the shortlist (related models: the derived block, whose summary is nearly
the base block's); otherwise (unrelated models: the argmax of near-equal similarities is noise) it
is another block pair. Either way it is chosen only from quantities blind to what the tests look at
(unit order, unit signs, value signs), so every p-value keeps its exact null (docs/scale.md).
"""

from __future__ import annotations

import functools
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage.features import UnitSimilarity, block_similarity_matrix
from modeltrace.lineage.workers import gather, split, worker_pool

#: Above this many (suspect unit, base unit) pairs the shortlist replaces the exhaustive pairing:
#: 2**25 pairs are ~40 GFLOP of products for 320 anchors (about half a second on one idle core).
EXHAUSTIVE_UNIT_PAIRS = 1 << 25
#: Base blocks per suspect block chosen by summary cosine (the same-position block comes on top).
SHORTLIST = 2

#: Suspect blocks scored against every base summary at once (bounds the score matrix's memory).
_SCORE_ROWS = 1024

PairingMethod = Literal["auto", "exhaustive", "shortlist"]
Features = list[np.ndarray]


@dataclass(frozen=True)
class BlockPairing:
    """Each suspect block's base block, and the block similarities computed on the way."""

    similarity: np.ndarray  # [suspect blocks, base blocks]; NaN where not computed (shortlist)
    pairs: list[tuple[int, int]]  # (suspect block, base block), one per suspect block
    method: Literal["exhaustive", "shortlist"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "block_pairs_compared": int(np.isfinite(self.similarity).sum()),
            "block_pairs": int(self.similarity.size),
            "shortlist": SHORTLIST if self.method == "shortlist" else None,
        }

    def values(self) -> list[list[float | None]]:
        """The similarity matrix for JSON (4 decimals; null where not computed)."""
        rounded = self.similarity.round(4)
        if self.method == "exhaustive":
            return rounded.tolist()
        return np.where(np.isnan(rounded), None, rounded).tolist()


def _dense_assignment(suspect: Fingerprint, base: Fingerprint) -> bool:
    """Dense-to-dense with no more suspect blocks than base blocks: a one-to-one assignment (dropped
    layers), which needs every block pair."""
    dense = all(b.expert is None for b in suspect.blocks) and all(b.expert is None for b in base.blocks)
    return dense and len(suspect.blocks) <= len(base.blocks)


def _similarity(unit_similarity: UnitSimilarity) -> np.ndarray:
    """Block similarity of every block pair, batched (sign-blind for gated MLPs)."""
    if unit_similarity.parts is None:
        return block_similarity_matrix(unit_similarity.suspect, unit_similarity.base)
    up_s, gate_s, up_b, gate_b = unit_similarity.parts
    return block_similarity_matrix(up_s, up_b, gate_s, gate_b)


def _summaries(up: Features, gate: Features | None) -> np.ndarray:
    """One centred, unit-length vector per block, blind to unit order and to ``up`` signs: the mean
    gate feature and mean absolute up feature of gated MLPs (``gate`` given), else the mean feature."""
    rows = []
    for index, block in enumerate(up):
        if len(block) == 0:
            rows.append(None)
        elif gate is None:
            rows.append(block.mean(axis=0, dtype=np.float64))
        else:
            rows.append(np.concatenate([gate[index].mean(axis=0, dtype=np.float64),
                                        np.abs(block).mean(axis=0, dtype=np.float64)]))  # fmt: skip
    width = next((len(row) for row in rows if row is not None), 1)
    summary = np.array([np.zeros(width) if row is None else row for row in rows])
    summary -= summary.mean(axis=0)  # the direction every block shares says nothing about pairing
    return summary / np.maximum(np.linalg.norm(summary, axis=1, keepdims=True), 1e-12)


def _candidates(
    suspect: Fingerprint, base: Fingerprint, summary_s: np.ndarray, summary_b: np.ndarray
) -> list[list[int]]:
    """Each suspect block's shortlist: the best summary cosines plus the same (layer, expert) block.
    Scored in row chunks, so that thousands of blocks (``--full`` reads every expert) stay small."""
    keep = min(SHORTLIST, len(base.blocks))
    position = {(b.layer, b.expert): index for index, b in enumerate(base.blocks)}
    out = []
    for first in range(0, len(suspect.blocks), _SCORE_ROWS):
        scores = summary_s[first : first + _SCORE_ROWS] @ summary_b.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
        for offset, best in enumerate(top):
            block = suspect.blocks[first + offset]
            chosen = set(best.tolist())
            same = position.get((block.layer, block.expert))
            if same is not None:
                chosen.add(same)
            out.append(sorted(chosen))
    return out


#: Pieces the shortlisted similarities are cut into (contiguous suspect blocks), so that a few threads
#: share them evenly whatever each block's number of candidates.
_PIECES = 16


def _best_candidates(
    unit_similarity: UnitSimilarity, candidates: list[list[int]], rows: range
) -> list[tuple[list[float], int, np.ndarray]]:
    """For suspect blocks ``rows``: each candidate's block similarity, and the most similar candidate
    (the first of equal maxima, as ``np.argmax``) with its unit similarity matrix."""
    out = []
    for a in rows:
        values: list[float] = []
        best: tuple[float, int, np.ndarray] | None = None
        for b in candidates[a]:  # ascending, so a later equal value never displaces an earlier one
            value, matrix = unit_similarity.block(a, b)
            values.append(value)
            if best is None or value > best[0]:
                best = (value, b, matrix)
        assert best is not None  # every suspect block has at least one candidate
        out.append((values, best[1], best[2]))
    return out


def _shortlisted(
    suspect: Fingerprint, base: Fingerprint, unit_similarity: UnitSimilarity, pool: Executor
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The similarity matrix with only each suspect block's shortlist computed (NaN elsewhere), and
    each suspect block's most similar candidate. The unit similarity of each chosen pair is kept for
    the tests. Pieces of suspect blocks run on ``pool``; each block's result depends on its own
    candidates only, so the outcome is the same however the pieces are run."""
    if unit_similarity.parts is None:
        sides = [(unit_similarity.suspect, None), (unit_similarity.base, None)]
    else:
        up_s, gate_s, up_b, gate_b = unit_similarity.parts
        sides = [(up_s, gate_s), (up_b, gate_b)]
    summary_s, summary_b = gather(pool, [functools.partial(_summaries, *side) for side in sides])
    candidates = _candidates(suspect, base, summary_s, summary_b)
    pieces = split(len(candidates), _PIECES)
    scored = gather(pool, [functools.partial(_best_candidates, unit_similarity, candidates, rows)
                           for rows in pieces])  # fmt: skip
    similarity = np.full((len(suspect.blocks), len(base.blocks)), np.nan)
    pairs = []
    for rows, piece in zip(pieces, scored, strict=True):
        for a, (values, chosen, matrix) in zip(rows, piece, strict=True):
            similarity[a, candidates[a]] = values
            unit_similarity.keep(a, chosen, matrix)
            pairs.append((a, chosen))
    return similarity, pairs


def pair_blocks(
    suspect: Fingerprint,
    base: Fingerprint,
    unit_similarity: UnitSimilarity,
    method: PairingMethod = "auto",
    pool: Executor | None = None,
) -> BlockPairing:
    """Pair every suspect block with a base block on the block similarity built from
    ``unit_similarity`` (see the module doc). ``method`` "auto" shortlists only when the exhaustive
    products are large and the pairing is an argmax. ``pool`` runs the shortlist's pieces (default:
    one after the other in this thread)."""
    dense_assignment = _dense_assignment(suspect, base)
    unit_pairs = sum(map(len, unit_similarity.suspect)) * sum(map(len, unit_similarity.base))
    shortlist = method == "shortlist" or (method == "auto" and unit_pairs > EXHAUSTIVE_UNIT_PAIRS)
    if dense_assignment or not shortlist:
        similarity = _similarity(unit_similarity)
        if dense_assignment:
            rows, cols = linear_sum_assignment(-similarity)
            pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
        else:
            pairs = [(a, int(np.argmax(similarity[a]))) for a in range(len(suspect.blocks))]
        return BlockPairing(similarity, pairs, "exhaustive")
    if pool is None:
        with worker_pool(1) as in_place:
            similarity, pairs = _shortlisted(suspect, base, unit_similarity, in_place)
    else:
        similarity, pairs = _shortlisted(suspect, base, unit_similarity, pool)
    return BlockPairing(similarity, pairs, "shortlist")
