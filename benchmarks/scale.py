"""`identify` at hub scale: shortlist latency, full-answer latency and shortlist recall against 1 000,
10 000 and 100 000 registered fingerprints, the exact (numpy) and HNSW (usearch) indexes side by side.

The registered models are the quick zoo's real ones (every model of `modeltrace zoo build --quick`,
fingerprinted now) plus synthetic fillers up to each size. Queries are the zoo's related pairs
(`zoo.json`, expected related or same-weights, the suspect != the base): the suspect is sketched,
the index shortlists ``--shortlist`` registered models (the suspect itself left out), and the pair
counts as recalled when its base is among them. Recall is the false-negative side: a base the
shortlist misses is never compared.

Fillers: a pool of ``--pool`` unrelated models is generated as fingerprints of the zoo's shape and
vocabulary (the same anchor tokens, so the hard case: one tokenizer, correlated "data" shared by all
through common latent token features and a common bank of unit directions, each model its own
random mixture, as in tests/lineage/synthetic.py) and sketched by the real code. Sketching 100 000
of them would take an hour here, so the fillers are drawn from a Gaussian with the pool's mean and
covariance (its top principal directions plus isotropic rest) and scaled to unit length: a sketch's
similarity to any query is linear in it, so its mean and spread are those of a real pool member.
The table's "pool" line compares the two. For the full answer each filler borrows the fingerprint of
one pool member, so the comparisons cost what real ones would.

    .venv/bin/python benchmarks/scale.py --zoo /work/zoo-quick                 # 1k, 10k, 100k
    .venv/bin/python benchmarks/scale.py --zoo /work/zoo-quick --sizes 1000    # quick look

``--part identify`` (the default, and the only part here) is the candidate index; the hub scan has
its own script (benchmarks/scale_scan.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from modeltrace.api import load_or_fingerprint
from modeltrace.fingerprint.model import BlockSample, Fingerprint
from modeltrace.lineage.candidates import build_index, usearch_available
from modeltrace.lineage.compare import compare_fingerprints
from modeltrace.lineage.sketch import SKETCH_DIMS, compute_sketch
from modeltrace.stats import holm

POSITIVE = ("related", "same-weights")


def zoo_fingerprints(zoo: Path, cache: Path) -> dict[str, Fingerprint]:
    """Every zoo model's fingerprint (made once, kept in ``cache``), by its path relative to the zoo."""
    manifest = json.loads((zoo / "zoo.json").read_text())
    paths = sorted({pair[key] for pair in manifest["pairs"] for key in ("suspect_path", "base_path")})
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for relative in paths:
        target = cache / (relative.replace("/", "__") + ".mtfp")
        if not target.exists():
            from modeltrace.api import fingerprint

            fingerprint(zoo / relative, target)
        out[relative] = load_or_fingerprint(target)
    return out


def related_pairs(zoo: Path) -> list[tuple[str, str, str]]:
    manifest = json.loads((zoo / "zoo.json").read_text())
    return [
        (pair["suspect_path"], pair["base_path"], pair.get("relation") or pair["expected"])
        for pair in manifest["pairs"]
        if pair["expected"] in POSITIVE and pair["suspect_path"] != pair["base_path"]
    ]


def generated_fingerprint(template: Fingerprint, seed: int, data_seed: int = 0) -> Fingerprint:
    """An unrelated model of ``template``'s shape and anchors: its own embedding and MLP units, with
    the latent token features and unit directions every model "trained on the same data" shares."""
    anchors, hidden = len(template.anchors), int(template.header.get("hidden_size") or 64)
    data = np.random.default_rng(data_seed)
    latent = data.standard_normal((anchors, 16))
    bank = data.standard_normal((len(template.blocks), 512, 16))
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((16, hidden)) / 4
    embed = latent @ mix + 0.5 * rng.standard_normal((anchors, hidden))
    blocks = []
    for index, block in enumerate(template.blocks):
        units = len(block.unit_rows)
        shared = bank[index][rng.permutation(512)[:units]] @ mix * 4

        def rows(shared: np.ndarray = shared, units: int = units) -> np.ndarray:
            own = rng.standard_normal((units, hidden))
            return ((0.5 * own + 0.5 * shared) @ embed.T).astype(np.float32)

        up, gate = rows(), rows() if block.gate is not None else None
        digest = hashlib.sha256(up.tobytes()).hexdigest()
        blocks.append(BlockSample(block.layer, block.expert, block.units, block.unit_rows, up, gate,
                                  list(block.tensors), digest))  # fmt: skip
    header = {**template.header, "model": {"name": f"filler-{seed}"}}
    gram = (embed @ embed.T).astype(np.float32)
    return Fingerprint(header, template.vocabulary, list(template.anchors), gram, blocks, [], None)


def filler_sketches(
    pool: np.ndarray, count: int, rng: np.random.Generator, components: int = 64
) -> np.ndarray:
    """``count`` unit vectors from a Gaussian with the pool's mean and covariance (top ``components``
    principal directions, isotropic rest)."""
    mean = pool.mean(axis=0)
    centred = pool - mean
    _, values, vectors = np.linalg.svd(centred, full_matrices=False)
    top = min(components, len(values))
    spread = values[:top] / np.sqrt(len(pool) - 1)
    rest_variance = max(float((centred**2).sum() / (len(pool) - 1) - (spread**2).sum()), 0.0)
    rest = np.sqrt(rest_variance / (pool.shape[1] - top))
    out = np.empty((count, pool.shape[1]), dtype=np.float32)
    for first in range(0, count, 10_000):
        n = min(10_000, count - first)
        draw = mean + (rng.standard_normal((n, top)) * spread) @ vectors[:top]
        draw += rest * rng.standard_normal((n, pool.shape[1]))
        out[first : first + n] = draw / np.linalg.norm(draw, axis=1, keepdims=True)
    return out


def answer(
    suspect: Fingerprint, index: Any, shortlist: int, own_id: int, fingerprints: Any, family: int
) -> tuple[float, float, set[int]]:
    """One identify: sketch, shortlist, full comparison of the shortlist, Holm over ``family``.
    Returns (shortlist seconds, total seconds, shortlisted ids)."""
    start = time.perf_counter()
    query = compute_sketch(suspect)
    searched = time.perf_counter()
    ids, _ = index.search(query, shortlist + 1)
    chosen = [int(i) for i in ids if int(i) != own_id][:shortlist]
    listed = time.perf_counter()
    results = [compare_fingerprints(suspect, fingerprints(i)) for i in chosen]
    natural = [None if r.log10_p is None else r.log10_p * np.log(10) for r in results]
    holm([*natural, *([0.0] * (family - len(results)))], log=True)
    return listed - searched, time.perf_counter() - start, set(chosen)


def registry_load_seconds(vectors: np.ndarray, folder: Path) -> tuple[float, float, float]:
    """Seconds, with ``len(vectors)`` sketches in a SQLite registry, to count them (what an identify
    with a warm index pays), to check that all are current and to read them (what a process pays
    once, before its first search): rows inserted in bulk, fingerprints as empty stand-ins."""
    from sqlalchemy import insert

    from modeltrace.lineage.sketch import SKETCH_VERSION
    from modeltrace.registry import Registry
    from modeltrace.registry.schema import FingerprintRow, ModelRow, SketchRow, utc_now

    registry = Registry(str(folder / f"load-{len(vectors)}.sqlite"))
    now = utc_now()
    digests = [f"{i:064x}" for i in range(len(vectors))]
    fingerprints = [{"digest": d, "data": b"", "size": 0, "created_at": now} for d in digests]
    models = [
        {"name": f"m{i}", "namespace": "bench", "digest": d, "source": "", "fingerprint_digest": d,
         "created_at": now}
        for i, d in enumerate(digests)
    ]  # fmt: skip
    sketches = [
        {"fingerprint_digest": d, "version": SKETCH_VERSION, "dims": SKETCH_DIMS,
         "vector": v.astype("<f4").tobytes(), "created_at": now}
        for d, v in zip(digests, vectors, strict=True)
    ]  # fmt: skip
    with registry.engine.begin() as connection:
        connection.execute(insert(FingerprintRow), fingerprints)
        connection.execute(insert(ModelRow), models)
        connection.execute(insert(SketchRow), sketches)
    start = time.perf_counter()
    registry.sketches.state()
    counted = time.perf_counter()
    assert registry.sketches.missing(SKETCH_VERSION) == []
    checked = time.perf_counter()
    loaded = registry.sketches.load(SKETCH_VERSION, SKETCH_DIMS)
    seconds = time.perf_counter() - checked
    assert loaded.vectors.shape == vectors.shape
    registry.close()
    return counted - start, checked - counted, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zoo", type=Path, required=True, help="a zoo built by `modeltrace zoo build`")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--shortlist", type=int, default=32)
    parser.add_argument("--pool", type=int, default=200, help="generated fingerprints the fillers follow")
    parser.add_argument("--answers", type=int, default=5, help="full identify runs timed per size and kind")
    parser.add_argument("--kinds", nargs="+", choices=["exact", "usearch"], default=["exact", "usearch"])
    parser.add_argument("--no-load", action="store_true", help="skip timing the sketches' load from SQLite")
    parser.add_argument("--part", choices=["identify"], default="identify")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "modeltrace-scale-fps")
    args = parser.parse_args()
    with threadpool_limits(1):  # as the facade runs compare/identify (api/_blas.py)
        run(args)


def run(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    zoo = zoo_fingerprints(args.zoo, args.cache)
    names = sorted(zoo)
    pairs = related_pairs(args.zoo)
    template = zoo[next(n for n in names if n.endswith("llama-s0"))]
    started = time.perf_counter()
    pool_fps = [generated_fingerprint(template, 1000 + i) for i in range(args.pool)]
    pool = np.stack([compute_sketch(fp) for fp in pool_fps])
    print(f"pool: {args.pool} generated fingerprints sketched in {time.perf_counter() - started:.1f} s")
    zoo_sketches = np.stack([compute_sketch(zoo[n]) for n in names])
    fillers = filler_sketches(pool, max(args.sizes) - len(names), rng)
    queries = {s for s, _, _ in pairs}
    manifest = json.loads((args.zoo / "zoo.json").read_text())
    position = {name: i for i, name in enumerate(names)}
    unrelated = [float(zoo_sketches[position[p["suspect_path"]]] @ zoo_sketches[position[p["base_path"]]])
                 for p in manifest["pairs"] if p["expected"] not in POSITIVE]  # fmt: skip
    for label, sample in (("pool (real sketches)", pool), ("fillers (drawn)", fillers[:2000])):
        sims = np.array([sample @ zoo_sketches[names.index(q)] for q in queries]).ravel()
        print(f"similarity of the zoo's suspects to {label}: mean {sims.mean():.3f}, sd {sims.std():.3f}, "
              f"max {sims.max():.3f}")  # fmt: skip
    print(f"similarity of the zoo's unrelated pairs ({len(unrelated)}): mean {np.mean(unrelated):.3f}, "
          f"sd {np.std(unrelated):.3f}, max {np.max(unrelated):.3f}")  # fmt: skip
    print()
    kinds = [kind for kind in args.kinds if kind == "exact" or usearch_available()]
    header = (f"{'registered':>10}  {'index':<8} {'build s':>8} {'cpu s':>7} {'shortlist ms':>13} "
              f"{'p95 ms':>7} {'cpu ms':>7} {'answer ms':>10} {'cpu ms':>7} {'recall':>8} "
              f"{'worst rank':>10}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        vectors = np.concatenate([zoo_sketches, fillers[: size - len(names)]])
        ids = np.arange(size)

        def fingerprint_of(i: int) -> Fingerprint:
            return zoo[names[i]] if i < len(names) else pool_fps[i % len(pool_fps)]

        for kind in kinds:
            built, built_cpu = time.perf_counter(), time.process_time()
            index = build_index(ids, vectors, kind)
            # CPU time counts every thread usearch inserts with (all cores): what the build costs.
            build_seconds, build_cpu = time.perf_counter() - built, time.process_time() - built_cpu
            search_times, search_cpu, recalled = [], [], []
            for suspect, base, _ in pairs:
                own = names.index(suspect)
                start, cpu_start = time.perf_counter(), time.process_time()
                found, _ = index.search(vectors[own], args.shortlist + 1)
                search_times.append(time.perf_counter() - start)
                search_cpu.append(time.process_time() - cpu_start)
                chosen = [int(i) for i in found if int(i) != own][: args.shortlist]
                recalled.append(names.index(base) in chosen)
            answers, cpu = [], []
            for suspect, _, _ in pairs[: args.answers]:
                cpu_start = time.process_time()
                own = names.index(suspect)
                _, total, _ = answer(zoo[suspect], index, args.shortlist, own, fingerprint_of, size)
                answers.append(total)
                cpu.append(time.process_time() - cpu_start)
            # The base's rank among every registered model by exact similarity (the suspect left out).
            ranks = []
            for suspect, base, _ in pairs:
                scores = vectors @ vectors[names.index(suspect)]
                scores[names.index(suspect)] = -np.inf
                ranks.append(int((scores > scores[names.index(base)]).sum()) + 1)
            median_ms = statistics.median(search_times) * 1000
            p95 = float(np.percentile(search_times, 95)) * 1000
            print(f"{size:>10,}  {kind:<8} {build_seconds:>8.2f} {build_cpu:>7.2f} {median_ms:>13.2f} "
                  f"{p95:>7.2f} "
                  f"{statistics.median(search_cpu) * 1000:>7.2f} "
                  f"{statistics.median(answers) * 1000:>10.0f} {statistics.median(cpu) * 1000:>7.0f} "
                  f"{sum(recalled):>3}/{len(recalled):<4} {max(ranks):>10}")  # fmt: skip
            missed = [f"{s} -> {b} ({r})" for (s, b, r), ok in zip(pairs, recalled, strict=True) if not ok]
            for line in missed:
                print(f"{'':>12}missed: {line}")
    if not args.no_load:
        with tempfile.TemporaryDirectory() as folder:
            for size in args.sizes:
                vectors = np.concatenate([zoo_sketches, fillers[: size - len(names)]])
                count, check, seconds = registry_load_seconds(vectors, Path(folder))
                print(f"{size:,} sketches in a SQLite registry: counting {count:.3f} s (warm index), "
                      f"checking {check:.2f} s and loading {seconds:.2f} s (cold)")  # fmt: skip
    print(f"\nshortlist {args.shortlist}; sketch {SKETCH_DIMS} float32; {len(pairs)} related zoo pairs; "
          f"answer = sketch + shortlist + full comparison of the shortlist + Holm over all registered "
          f"(median of {args.answers}; wall and CPU); worst rank: the lowest exact rank of a pair's base; "
          f"one BLAS thread")  # fmt: skip


if __name__ == "__main__":
    main()
