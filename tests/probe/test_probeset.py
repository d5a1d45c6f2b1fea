"""The optimised probe set: linear units, every family pair split many times, deterministic, cached."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from modeltrace import api
from modeltrace.probe import library, probeset
from modeltrace.probe.probeset import ProbeSet, unit_slope


def test_every_pair_of_builtin_families_differs_on_many_units(builtin_set: ProbeSet) -> None:
    assert len(builtin_set.units) == probeset.DEFAULT_UNIT_COUNT
    assert builtin_set.indistinguishable == ()
    for a, b in itertools.combinations(builtin_set.references, 2):
        differing = sum(1 for unit in builtin_set.units if unit.expected[a] != unit.expected[b])
        assert differing >= builtin_set.min_pair_distance >= 10, (a, b)


def test_expected_counts_are_exact_slopes_of_the_references(builtin_set: ProbeSet) -> None:
    specs = {spec.name: spec for spec in library.builtin_specs()}
    low, high = builtin_set.repeats
    for unit in builtin_set.units[:6]:
        for name, expected in unit.expected.items():
            reference = library.load(specs[name])
            assert unit_slope(reference, unit.text) == expected
            wrapped = "user\n{}"
            difference = reference.count(wrapped.format(unit.text * high)) - reference.count(
                wrapped.format(unit.text * low)
            )
            assert difference == expected * (high - low)


def test_non_linear_strings_are_rejected() -> None:
    reference = library.load(next(s for s in library.builtin_specs() if s.name == "cl100k"))
    assert unit_slope(reference, "1") is None  # "1111" is grouped in threes by cl100k's regex
    assert unit_slope(reference, " ") is None  # space runs merge
    assert unit_slope(reference, " hello") == 1


def test_build_is_deterministic(builtin_set: ProbeSet) -> None:
    references = {spec.name: library.load(spec) for spec in library.builtin_specs()}
    again = probeset.build_probe_set(references, builtin_set.library_digest)
    assert again.to_dict() == builtin_set.to_dict()


def test_cache_is_keyed_by_library_and_rebuilt_when_it_changes(
    builtin_set: ProbeSet, data_dir: Path, _isolated_home: Path
) -> None:
    cached = list((_isolated_home / "probe").glob("probeset-*.json"))
    assert len(cached) == 1
    api.add_tokenizer("gpt2", data_dir / "tokenizers" / "gpt2")
    grown = api.probe_set()
    assert grown.library_digest != builtin_set.library_digest
    assert "gpt2" in grown.references and grown.min_pair_distance >= 5
    assert len(list((_isolated_home / "probe").glob("probeset-*.json"))) == 2
    api.remove_tokenizer("gpt2")
    assert api.probe_set().to_dict() == builtin_set.to_dict()


def test_stale_or_corrupt_cache_is_ignored(builtin_set: ProbeSet, tmp_path: Path) -> None:
    path = tmp_path / "probeset.json"
    path.write_text("{not json", encoding="utf-8")
    assert probeset.read_cached(path, builtin_set.library_digest) is None
    probeset.write_cache(path, builtin_set)
    assert probeset.read_cached(path, "another-digest") is None
    data = json.loads(path.read_text(encoding="utf-8"))
    data["version"] = -1
    path.write_text(json.dumps(data), encoding="utf-8")
    assert probeset.read_cached(path, builtin_set.library_digest) is None
