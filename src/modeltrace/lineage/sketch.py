"""A compact, fixed-size sketch of a fingerprint, for finding candidate relatives among many models.

What it summarises: the second moment of the model's MLP units in the token frame. Each sampled
unit's responses to the anchor tokens (``up`` and, for gated MLPs, ``gate`` rows) are whitened with
the anchor Gram (the frame :mod:`modeltrace.lineage.features` compares in: invariant to rotations,
permutations and sign flips of the residual stream and to norm gains) and scaled to unit length;
``C = Σ_u f_u f_uᵀ / n`` over every sampled unit of every block is an anchors-by-anchors matrix.
It is unchanged by reordering units, flipping their signs (it is quadratic), reordering, dropping or
duplicating layers and copying experts (all blocks are pooled), and moves little under fine-tuning
or quantisation. Independently trained models of one family share its leading eigencomponents (what
their data imposes), so those ``GENERIC_COMPONENTS`` are taken out.

The sketch is a count sketch of ``C``'s off-diagonal entries: the entry for anchors ``(a, b)`` is
added, with a sign, into one of ``SKETCH_DIMS`` buckets, both drawn from a hash of the two anchors'
*token strings* (rows when the vocabulary is unknown), so models agree on the layout over the anchors
they share however their vocabularies are ordered, extended or pruned. The cosine of two sketches
estimates the cosine of the two ``C`` matrices over the shared anchor pairs, give or take about
``1/sqrt(SKETCH_DIMS)``. On the quick zoo: related pairs 0.7 and up (0.4 for a vocabulary pruned by
a quarter, which loses a quarter of the anchors), unrelated ones 0.1 and below (docs/scale.md,
"Candidate index").

It only ranks candidates; verdicts and p-values come from the full comparison. Pure: a fingerprint
in, a float32 vector out. ``SKETCH_VERSION`` changes whenever the values for a fingerprint would.
"""

from __future__ import annotations

import hashlib

import numpy as np

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.fingerprint.sampling import DEFAULT_SEED
from modeltrace.lineage.features import normalised_rows, whitener

#: Bumped whenever the sketch of a fingerprint would come out different: stored sketches of another
#: version are recomputed from their fingerprints.
SKETCH_VERSION = 1
SKETCH_DIMS = 512
#: Leading eigencomponents of ``C`` left out: trained models share them (what their data imposes),
#: so they would make unrelated models of one family look alike.
GENERIC_COMPONENTS = 8
_SEED = b"modeltrace-sketch-1"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


#: Anchors the sketch uses when the vocabulary is known: the fingerprint chose 256 by the hash of
#: their strings (stable under vocabulary reordering, extension and pruning) and 64 by row (which
#: those transforms move); the sketch keeps the first of the former, so a pruned or extended
#: vocabulary changes few of them.
SKETCH_ANCHORS = 192


def _selection_hash(seed: int, key: str) -> int:
    """The hash ``fingerprint.sampling.anchor_tokens`` ranks anchor strings by (the same definition:
    a test checks they agree), so the lowest ones here are the lowest of the whole vocabulary."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def sketch_anchors(fp: Fingerprint) -> tuple[np.ndarray, list[str]]:
    """The anchors the sketch uses (positions in ``fp.anchors``) and what names each across models:
    with a known vocabulary the ``SKETCH_ANCHORS`` lowest by string hash, named by string (as
    ``shared_anchors`` matches them); without one every anchor, named by embedding row."""
    if fp.vocabulary is None:
        return np.arange(len(fp.anchors), dtype=np.int64), [f"i:{row}" for row, _ in fp.anchors]
    seed = int(fp.header.get("seed", DEFAULT_SEED))
    named = [(pos, token) for pos, (_, token) in enumerate(fp.anchors) if token is not None]
    named.sort(key=lambda item: _selection_hash(seed, "s:" + item[1]))
    chosen = sorted(named[:SKETCH_ANCHORS])
    return np.array([pos for pos, _ in chosen], dtype=np.int64), [f"s:{token}" for _, token in chosen]


def _key_hashes(keys: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, key=_SEED)
                        .digest(), "little") for key in keys],
        dtype=np.uint64,
    )  # fmt: skip


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised: a well-spread 64-bit hash of each value."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_moment(fp: Fingerprint, positions: np.ndarray) -> np.ndarray:
    """``C``: the mean outer product of the whitened, unit-length responses of every sampled unit to
    the anchors at ``positions``."""
    anchors = len(positions)
    if not fp.blocks or anchors == 0:
        return np.zeros((anchors, anchors), dtype=np.float64)
    white = whitener(fp.anchor_gram[np.ix_(positions, positions)])
    parts = [block.up for block in fp.blocks] + [block.gate for block in fp.blocks if block.gate is not None]
    units = normalised_rows(np.concatenate(parts, axis=0)[:, positions].astype(np.float64) @ white)
    moment = (units.T @ units) / len(units)
    if GENERIC_COMPONENTS and anchors > GENERIC_COMPONENTS:
        values, vectors = np.linalg.eigh(moment)
        top = vectors[:, -GENERIC_COMPONENTS:]
        moment -= (top * values[-GENERIC_COMPONENTS:]) @ top.T
    return moment


def compute_sketch(fp: Fingerprint) -> np.ndarray:
    """The fingerprint's sketch: ``SKETCH_DIMS`` float32 values of unit length (zeros when the
    fingerprint has no MLP blocks or fewer than two anchors)."""
    positions, keys = sketch_anchors(fp)
    moment = unit_moment(fp, positions)
    first, second = np.triu_indices(len(moment), k=1)
    out = np.zeros(SKETCH_DIMS, dtype=np.float64)
    if len(first):
        hashes = _key_hashes(keys)
        low = np.minimum(hashes[first], hashes[second])
        high = np.maximum(hashes[first], hashes[second])
        pair = _mix(_mix(low) ^ high)  # symmetric in the two anchors: their order differs between models
        buckets = ((pair >> np.uint64(1)) % np.uint64(SKETCH_DIMS)).astype(np.int64)
        signs = np.where((pair & np.uint64(1)) == 1, -1.0, 1.0)
        out = np.bincount(buckets, weights=signs * moment[first, second], minlength=SKETCH_DIMS)
    norm = float(np.linalg.norm(out))
    return (out / norm if norm > 0 else out).astype(np.float32)
