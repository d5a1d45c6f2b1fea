"""The residual-dimension test: do S and B share the residual basis, column for column?

**Symmetry.** Permuting the dimensions of the residual stream, together with every tensor that reads
or writes it (the token and position embedding columns, the gains and biases of every LayerNorm or
RMSNorm, the input columns of every query/key/value/MLP-input projection, the output rows of every
attention-output and MLP-output projection, the output head's columns), changes nothing the network
computes: a norm's mean and variance (or root mean square) over the dimensions do not depend on
their order, and every other operation on the residual stream is a matrix product or elementwise. An
elementwise-iid initialisation is invariant under that permutation and every elementwise optimiser
(SGD, Adam, Adafactor, Lion, weight decay) is equivariant under it, so the law of an independently
trained model B does not change when its residual dimensions are relabelled, whatever data it saw.

**Test.** Both fingerprints keep the anchor tokens' embedding values in the same seeded residual
dimensions (chosen from the seed and the hidden size only). For every kept dimension of S and of B,
the column of anchor values (over the anchors both share, centred) is a feature; S's dimensions are
matched one-to-one to B's by maximum total |cosine| (blind to sign flips of residual dimensions, a
symmetry of RMSNorm networks), and the statistic is the number of fixed points F (dimension d of S
matched to dimension d of B). If S was trained independently of B, relabelling B's dimensions by a
uniformly random permutation leaves the joint law of (S, B) unchanged and permutes the matching, so
the matching is a uniformly random permutation and F has the rencontres law (as the fixed-point test
on MLP units, :mod:`modeltrace.lineage.exact`): the randomised p-value is exactly uniform.

**Reach.** A derivative keeps its ancestor's residual basis unless someone rotates or permutes it on
purpose, however much its layers were retrained: two models that share only their embeddings (layers
kept from different depths, then separately fine-tuned) are found here when no layer correlates. A
deliberate residual rotation or permutation hides it; the token-frame tests still see those, and
every test tried enters the Bonferroni correction. Models whose residual stream carries fixed, not
learnt, structure (sinusoidal absolute positions added to the embeddings) break the symmetry; the
learnt position embeddings of BERT/GPT-2 and rotary embeddings (which act inside attention heads,
not on the residual stream) do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from modeltrace.fingerprint.model import Fingerprint
from modeltrace.lineage.exact import pair_uniform, randomised_log_p
from modeltrace.lineage.features import SharedAnchors

#: Fewer kept dimensions than this is not worth a Bonferroni factor.
MIN_DIMS = 8


@dataclass(frozen=True)
class ResidualResult:
    log_p: float
    dims: int  # residual dimensions matched
    fixed_points: int  # dimensions matched to themselves
    matched_cosine: float  # mean |cosine| of same-index columns (effect size)

    def as_dict(self) -> dict[str, object]:
        return {
            "log10_p": self.log_p / math.log(10),
            "dimensions": self.dims,
            "fixed_points": self.fixed_points,
            "diagonal_cosine": self.matched_cosine,
            "null": {"distribution": "rencontres", "n": self.dims},
            "randomised": True,
        }


def _columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-value columns centred over the anchors and scaled to unit length, and which are alive
    (not constant over the anchors)."""
    centred = values - values.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0)
    alive = norms > 1e-6 * max(float(norms.max(initial=0.0)), 1e-30)
    return centred / np.maximum(norms, 1e-30)[None, :], alive


def residual_test(suspect: Fingerprint, base: Fingerprint, shared: SharedAnchors) -> ResidualResult | None:
    """The residual-dimension test (module doc), or None when it does not apply: a fingerprint without a
    residual sample (older than version 3), different hidden sizes, or too few dimensions or anchors."""
    s, b = suspect.residual, base.residual
    if s is None or b is None or s.hidden != b.hidden or not np.array_equal(s.dims, b.dims):
        return None
    if len(s.dims) < MIN_DIMS or len(shared.suspect) < 3:
        return None
    columns_s, alive_s = _columns(s.columns[shared.suspect].astype(np.float64))
    columns_b, alive_b = _columns(b.columns[shared.base].astype(np.float64))
    # A constant (dead) column has no direction and would be matched by index on a tie. Dropping the
    # dimensions dead on either side keeps the null exact: given that set, B's law is still invariant
    # under every permutation of the remaining dimensions, and the matching is equivariant under them.
    alive = alive_s & alive_b
    if int(alive.sum()) < MIN_DIMS:
        return None
    cosine = columns_s[:, alive].T @ columns_b[:, alive]
    rows, cols = linear_sum_assignment(-np.abs(cosine))
    fixed, dims = int(np.sum(rows == cols)), int(alive.sum())
    log_p = randomised_log_p(dims, fixed, pair_uniform("residual-dims", s.digest, b.digest))
    return ResidualResult(log_p, dims, fixed, float(np.mean(np.abs(np.diag(cosine)))))
