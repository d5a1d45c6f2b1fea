"""The residual-dimension test's null, measured: p-values of independently trained models are uniform.

Trains ``--models`` small Llama-style language models the way the quick zoo trains its bases (same
corpus, same schedule, a different initialisation seed and data order each), fingerprints them, and
prints the residual-dimension p-values of the disjoint pairs (0-1, 2-3, ...: independent samples) and
of all pairs, with a Kolmogorov-Smirnov test against U(0, 1). It also runs the synthetic check of
tests/lineage/test_residual.py at a larger size (independent embeddings sharing the data's latent
token structure). Needs the torch extra.

Usage:
    PYTHONPATH=src python benchmarks/residual_null.py [--models 24] [--synthetic 1000]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from modeltrace.fingerprint.build import build_fingerprint
from modeltrace.fingerprint.model import Fingerprint, ResidualSample
from modeltrace.fingerprint.sampling import DEFAULT_SEED
from modeltrace.formats.detect import open_model
from modeltrace.lineage.features import SharedAnchors, shared_anchors
from modeltrace.lineage.residual import residual_test


def trained_models(count: int, folder: Path) -> list[Fingerprint]:
    from modeltrace.zoo.arch import init_params
    from modeltrace.zoo.corpus import generate_tokens, make_lexicon
    from modeltrace.zoo.files import write_hf_folder
    from modeltrace.zoo.plan import ZooPlan, llama_config, model_seed
    from modeltrace.zoo.train import Schedule, reproducible_torch, train_lm

    plan = ZooPlan.for_mode(True, 0)
    lexicon = make_lexicon(0)
    corpus = generate_tokens(lexicon, plan.corpus_tokens, 0)
    config = llama_config(len(lexicon.vocab))
    fingerprints = []
    with reproducible_torch(2):
        for index in range(count):
            started = time.perf_counter()
            schedule = Schedule(plan.base_steps, lr=3e-3, warmup=20, batch=plan.batch)
            params, _ = train_lm(init_params(config, 100 + index), config, corpus, schedule,
                                 model_seed(0, f"null-{index}"))  # fmt: skip
            write_hf_folder(folder / f"m{index}", config, params, list(lexicon.vocab))
            with open_model(folder / f"m{index}") as source:
                fingerprints.append(build_fingerprint(source))
            print(f"  model {index + 1}/{count} trained in {time.perf_counter() - started:.1f} s", flush=True)
    return fingerprints


def p_value(suspect: Fingerprint, base: Fingerprint, shared: SharedAnchors | None = None) -> float:
    result = residual_test(suspect, base, shared or shared_anchors(suspect, base))
    assert result is not None
    return float(np.exp(result.log_p))


def synthetic(pairs: int, hidden: int = 64, vocab: int = 400) -> list[float]:
    """Independent embeddings ``latent @ mix + noise`` sharing the data's latent token features."""
    latent = np.random.default_rng(0).standard_normal((vocab, 16))
    shared = SharedAnchors(np.arange(vocab), np.arange(vocab), 0, vocab)

    def model(seed: int) -> Fingerprint:
        rng = np.random.default_rng(seed)
        embedding = latent @ rng.standard_normal((16, hidden)) / 4 + 0.5 * rng.standard_normal(
            (vocab, hidden)
        )
        residual = ResidualSample.from_frame(embedding.astype(np.float32), None, DEFAULT_SEED)
        return Fingerprint({}, None, [], np.zeros((0, 0), np.float32), residual=residual)

    return [p_value(model(2 * i + 1), model(2 * i + 2), shared) for i in range(pairs)]


def report(label: str, values: list[float]) -> None:
    ks = stats.kstest(values, "uniform")
    small = {level: float(np.mean(np.array(values) < level)) for level in (0.05, 0.01)}
    print(f"{label:48s} n={len(values):5d}  KS p={ks.pvalue:.3f}  min p={min(values):.4f}  "
          f"share p<0.05={small[0.05]:.3f}  share p<0.01={small[0.01]:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=24)
    parser.add_argument("--synthetic", type=int, default=1000)
    args = parser.parse_args()
    report("synthetic independent pairs (shared data)", synthetic(args.synthetic))
    if args.models >= 2:
        with tempfile.TemporaryDirectory() as folder:
            models = trained_models(args.models, Path(folder))
        disjoint = [p_value(models[i], models[i + 1]) for i in range(0, len(models) - 1, 2)]
        everything = [p_value(a, b) for a, b in itertools.combinations(models, 2)]
        report("trained zoo-style bases, disjoint pairs", disjoint)
        report("trained zoo-style bases, all pairs (dependent)", everything)


if __name__ == "__main__":
    main()
