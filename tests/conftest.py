"""Shared fixtures. MODELTRACE_HOME is pinned to a temporary folder for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Files the tests read (real configs, tokenizer files), each with its origin in SOURCES.md.
#: Tests never read anything outside the checkout: a fresh clone must pass on its own.
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("modeltrace-home")
    monkeypatch.setenv("MODELTRACE_HOME", str(home))
    return home


@pytest.fixture
def data_dir() -> Path:
    """``tests/data``: real config.json and tokenizer files (see ``tests/data/SOURCES.md``)."""
    return DATA


@pytest.fixture(scope="session")
def quick_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick lineage zoo, built once per test session (about a minute on 2 idle cores).

    Returns the zoo folder; its manifest is ``<folder>/zoo.json`` (see docs/zoo.md). While
    developing, ``MODELTRACE_TEST_ZOO=/path/to/zoo`` reuses a quick zoo built earlier with
    ``modeltrace zoo build --quick`` instead of building one.
    """
    prebuilt = os.environ.get("MODELTRACE_TEST_ZOO")
    if prebuilt:
        return Path(prebuilt)
    pytest.importorskip("torch", reason="building the zoo needs the torch extra")
    from modeltrace import api

    folder = tmp_path_factory.mktemp("zoo")
    api.build_zoo(folder, quick=True, seed=0)
    return folder


# --- the data-skip guard (`.ci/run` passes --fail-on-data-skips) ---------------------------------
#
# A fresh clone must run every test: a skip is acceptable only where the machine lacks something
# (no PostgreSQL, no GPU, another OS), and such a skip says so with the words "on this machine" in
# its reason. Under --fail-on-data-skips any other skip (a missing file, data folder or package that
# `make` installs) fails the run, listed with its reason.

MACHINE_SKIP_MARK = "on this machine"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-data-skips",
        action="store_true",
        help=f"fail the run if a test was skipped for a reason that does not say '{MACHINE_SKIP_MARK}'",
    )


class _DataSkipGuard:
    """Collects skips whose reason does not blame the machine; fails the session if there are any."""

    def __init__(self) -> None:
        self.data_skips: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # An xfail report is "skipped" too but carries `wasxfail`: an expected failure, not a skip.
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = _skip_reason(report)
            if MACHINE_SKIP_MARK not in reason.lower():
                self.data_skips.append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.data_skips:
            return
        terminalreporter.section("skipped for missing data (--fail-on-data-skips)", red=True)
        for nodeid, reason in self.data_skips:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.data_skips)} test(s) skipped for something a fresh clone should have: put the "
            f"file in tests/data (see SOURCES.md) or, if the machine lacks it, say '{MACHINE_SKIP_MARK}'."
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.data_skips and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fail-on-data-skips"):
        config.pluginmanager.register(_DataSkipGuard(), "data-skip-guard")


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)
