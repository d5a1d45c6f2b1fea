"""Fixtures for fingerprint tests: the synthetic model factory the lineage tests use too."""

from tests.lineage.conftest import model_factory  # noqa: F401  (a fixture: pytest finds it by name)
