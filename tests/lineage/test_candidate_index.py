"""The HNSW candidate index (usearch) against the exact one, on the geometry that defeated it: a
crowd of sketches sharing a common component (one large family, or many models trained on the
same data) and small families orthogonal to it (docs/scale.md, "Candidate index")."""

from __future__ import annotations

import numpy as np
import pytest

from modeltrace.lineage.candidates import ExactIndex, USearchIndex, usearch_available
from modeltrace.lineage.sketch import SKETCH_DIMS

pytestmark = pytest.mark.skipif(
    not usearch_available(), reason="the optional usearch package is not installed on this machine"
)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def _crowd_and_families(
    rng: np.random.Generator, crowd: int, families: int, members: int, shared: float
) -> np.ndarray:
    """``families`` x ``members`` sketches first (members of a family at cosine about 0.7, families
    orthogonal to the crowd's axis), then ``crowd`` sketches whose cosine with each other is about
    ``shared`` and with the families about 0."""
    axis = _unit(rng.standard_normal(SKETCH_DIMS))
    groups = []
    for _ in range(families):
        centre = rng.standard_normal(SKETCH_DIMS)
        centre = _unit(centre - (centre @ axis) * axis)
        groups.append(
            _unit(np.sqrt(0.7) * centre + np.sqrt(0.3) * _unit(rng.standard_normal((members, SKETCH_DIMS))))
        )
    noise = _unit(rng.standard_normal((crowd, SKETCH_DIMS)))
    groups.append(_unit(np.sqrt(shared) * axis + np.sqrt(1 - shared) * noise))
    return np.concatenate(groups)


def test_usearch_finds_families_outside_a_crowd_as_the_exact_index_does() -> None:
    # A sparse graph (connectivity 8) shows at 3 000 sketches what connectivity 32 showed at
    # 100 000: with the crowd's shared component left in, HNSW's pruning cut the families off
    # (a quarter to a half of their members missed, depending on the build).
    rng = np.random.default_rng(7)
    families, members = 8, 6
    vectors = _crowd_and_families(rng, 3000, families, members, shared=0.5)
    ids = np.arange(len(vectors)) * 5 + 3  # ids are not positions
    exact = ExactIndex(ids, vectors)
    approximate = USearchIndex(ids, vectors, connectivity=8)
    found = total = 0
    for row in range(families * members):
        truth_ids, truth_scores = exact.search(vectors[row], members)
        got_ids, got_scores = approximate.search(vectors[row], members)
        found += len(set(truth_ids.tolist()) & set(got_ids.tolist()))
        total += members
        # The scores are the sketches' cosines, as the exact index gives them (the centre added back).
        expected = dict(zip(truth_ids.tolist(), truth_scores.tolist(), strict=True))
        for key, score in zip(got_ids.tolist(), got_scores.tolist(), strict=True):
            if key in expected:
                assert score == pytest.approx(expected[key], abs=1e-4)
    # The threaded build is not deterministic: a rate with margin, not equality (it finds all).
    assert found / total >= 0.97, f"{found}/{total}"


def test_usearch_index_grows_by_adding_with_the_first_centre() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng.standard_normal((300, SKETCH_DIMS)))
    empty = USearchIndex(np.zeros(0, dtype=np.int64), np.zeros((0, SKETCH_DIMS), dtype=np.float32))
    assert len(empty) == 0 and len(empty.search(vectors[0], 3)[0]) == 0
    empty.add(np.arange(10), vectors[:10])
    grown = USearchIndex(np.arange(10), vectors[:10])
    grown.add(np.arange(10, 300), vectors[10:])
    empty.add(np.arange(10, 300), vectors[10:])
    exact = ExactIndex(np.arange(300), vectors)
    for index in (grown, empty):
        assert len(index) == 300
        for row in (3, 150, 299):
            ids, scores = index.search(vectors[row], 1)
            assert ids[0] == row and scores[0] == pytest.approx(1.0, abs=1e-4)
            assert index.search(vectors[row], 5)[0].tolist() == exact.search(vectors[row], 5)[0].tolist()


def test_ray_starts_in_a_process_that_built_a_usearch_index() -> None:
    """usearch's native library loaded before Ray's makes ``ray.init`` abort (std::regex_error);
    building the index loads Ray's first, so a scan or service can still start Ray afterwards."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed on this machine (pip install 'modeltrace[ray]')")
    script = (
        "import numpy as np\n"
        "from modeltrace.lineage.candidates import USearchIndex\n"
        "USearchIndex(np.arange(4), np.eye(4, 512, dtype=np.float32))\n"
        "import ray\n"
        "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "print(ray.get(ray.put(41)) + 1)\n"
        "ray.shutdown()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("42"), done.stderr[-2000:]
