"""Registries filled in bulk for the candidate-index tests: models with stand-in fingerprints and
given sketches, inserted as rows (no fingerprint is computed or sketched)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import insert, text

from modeltrace.lineage.sketch import SKETCH_DIMS, SKETCH_VERSION
from modeltrace.registry import Registry
from modeltrace.registry.schema import FingerprintRow, ModelRow, SketchRow, utc_now


def insert_sketches(registry: Registry, vectors: np.ndarray) -> np.ndarray:
    """Models with stand-in fingerprints and the given sketches, in bulk (no vectors written): their ids."""
    now = utc_now()
    digests = [f"{i:064x}" for i in range(len(vectors))]
    with registry.engine.begin() as connection:
        connection.execute(insert(FingerprintRow), [{"digest": d, "data": b"", "size": 0, "created_at": now}
                                                    for d in digests])  # fmt: skip
        connection.execute(insert(ModelRow), [{"name": f"m{i}", "namespace": "t", "digest": d, "source": "",
                                               "fingerprint_digest": d, "created_at": now}
                                              for i, d in enumerate(digests)])  # fmt: skip
        connection.execute(insert(SketchRow), [{"fingerprint_digest": d, "version": SKETCH_VERSION,
                                                "dims": SKETCH_DIMS, "vector": v.astype("<f4").tobytes(),
                                                "created_at": now}
                                               for d, v in zip(digests, vectors, strict=True)])  # fmt: skip
        ids = connection.execute(text("SELECT id FROM models ORDER BY id")).scalars().all()
    return np.array(ids, dtype=np.int64)
