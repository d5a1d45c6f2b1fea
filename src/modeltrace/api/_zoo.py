"""The facade for the lineage zoo: small CPU-trained models and their derivatives, with a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from modeltrace.api._lineage import compare
from modeltrace.lineage import DEFAULT_ALPHA


def build_zoo(
    directory: str | Path,
    quick: bool = False,
    seed: int = 0,
    threads: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Build the lineage zoo (small CPU-trained models and their derivatives) in ``directory``.

    Returns the path of the manifest ``zoo.json``. Needs the ``torch`` extra. ``progress`` is
    called with (model name, models done, models in total) before each model and at the end.
    """
    from modeltrace import zoo  # torch is optional: imported only when a zoo is built

    return zoo.build_zoo(directory, quick=quick, seed=seed, threads=threads, progress=progress)


def load_zoo_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a built zoo (``zoo.json``), version-checked."""
    from modeltrace import zoo

    return zoo.load_manifest(directory)


# Accuracy of the lineage engine over a zoo manifest (the benchmark and `make demo` print it); the
# harness is zoo/accuracy.py, fed with this facade's compare.


def run_zoo_pairs(
    manifest_path: str | Path,
    alpha: float = DEFAULT_ALPHA,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Compare every pair of a zoo manifest; one row per pair (verdict, log10 p, layer map check).

    A ``zoo.json`` built by another modeltrace version raises :class:`~modeltrace.errors.ZooError`.
    """
    from modeltrace.zoo import accuracy

    def compare_pair(suspect: Path, base: Path) -> dict[str, Any]:
        return compare(suspect, base, alpha=alpha, full=full).as_dict()

    return accuracy.run_pairs(Path(manifest_path), compare_pair, progress)


def zoo_accuracy(
    manifest_path: str | Path,
    alpha: float = DEFAULT_ALPHA,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-transform detection and false-positive summary of a zoo, plus the overall pass/fail."""
    from modeltrace.zoo import accuracy

    return accuracy.summarise(run_zoo_pairs(manifest_path, alpha, full, progress), alpha)


# The seed case (docs/zoo.md, "The seed case"): a Kimi-shaped base, a pruned INT4 vendor product made
# from it, an independent model of the same architecture; compared, then licence-checked.


def build_seed_case(directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the seed-case family (numpy, about a second) under ``directory``; folders by name."""
    from modeltrace.zoo.seed_case import build_seed_case as _build

    return _build(directory, seed=seed)


def seed_case_demo(
    directory: str | Path, mau: int = 200_000_000, base_license: str = "kimi-k2.5"
) -> dict[str, Any]:
    """Build the seed case in ``directory``, compare the vendor product and the independent model with
    the base, and check the licences of the ancestry the weights revealed (the product declares none).

    ``base_license`` is the base's licence id: Kimi K2.5's "modified-mit" (the bare Hugging Face name
    ``modified-mit`` is shared with Kimi K2 and so ambiguous; the lineage names the specific one).
    Returns ``models`` (folder by name), ``comparisons`` (one per pair: suspect, base, verdict,
    log10_p, test, relation, layer_map), ``lineage_file`` and ``license`` (the compliance report).
    """
    from modeltrace.api._licenses import check_license
    from modeltrace.zoo import seed_case
    from modeltrace.zoo.accuracy import POSITIVE

    root = Path(directory)
    models = build_seed_case(root)
    comparisons = []
    for suspect in (seed_case.CHILD, seed_case.INDEPENDENT):
        result = compare(models[suspect], models[seed_case.BASE])
        kept = ("verdict", "log10_p", "p_value_test", "relation", "layer_map")
        found = {key: getattr(result, key) for key in kept}
        comparisons.append({"suspect": suspect, "base": seed_case.BASE} | found)
    detected = [
        c["base"] for c in comparisons if c["suspect"] == seed_case.CHILD and c["verdict"] in POSITIVE
    ]
    parents = "".join(
        f"  - {{name: {base}, license: {base_license}, relation: {seed_case.CHILD_RELATION}}}\n"
        for base in detected
    )
    lineage_file = root / f"{seed_case.CHILD}.lineage.yaml"
    lineage_file.write_text(
        f"# The ancestry modeltrace detected from the weights; {seed_case.CHILD} declares none.\n"
        f"name: {seed_case.CHILD}\nlicense: proprietary\n" + (f"parents:\n{parents}" if parents else ""),
        encoding="utf-8",
    )
    report = check_license(lineage=lineage_file, use="commercial", distribution="hosted", mau=mau)
    return {
        "models": {name: str(path) for name, path in models.items()},
        "comparisons": comparisons,
        "lineage_file": str(lineage_file),
        "license": report.as_dict(),
    }
