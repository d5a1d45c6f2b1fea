"""The executors' one windowed loop (``in_window``), with a fake submit and wait."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import pytest

from modeltrace.scan.executors import LATER, in_window


class FakeWorkers:
    """Tasks finish in submission order, one per wait; records the most ever in flight."""

    def __init__(self) -> None:
        self.most_in_flight = 0

    def submit(self, item: int) -> int:
        return item

    def wait(self, pending: list[int]) -> tuple[list[int], list[int]]:
        self.most_in_flight = max(self.most_in_flight, len(pending))
        return [pending[0] * 10], pending[1:]


def test_every_input_is_run_with_at_most_the_window_in_flight() -> None:
    workers = FakeWorkers()
    results = list(in_window(range(20), workers.submit, workers.wait, window=3))
    assert sorted(results) == [i * 10 for i in range(20)]
    assert workers.most_in_flight == 3


def test_later_waits_for_a_result_that_queues_more_work() -> None:
    """The scan's feed: a result (a fingerprint) queues a follow-up (its comparisons)."""
    workers = FakeWorkers()
    follow_ups: deque[int] = deque()
    finished: list[int] = []

    def feed() -> Iterator[object]:
        yield from (1, 2)
        while len(finished) < 4:
            yield follow_ups.popleft() if follow_ups else LATER

    for result in in_window(feed(), workers.submit, workers.wait, window=8):
        finished.append(result)
        if result < 100:
            follow_ups.append(result + 100)
    assert sorted(finished) == [10, 20, 1100, 1200]


def test_later_with_nothing_in_flight_is_a_bug_not_a_hang() -> None:
    workers = FakeWorkers()
    with pytest.raises(RuntimeError, match="no task in flight"):
        list(in_window(iter([LATER]), workers.submit, workers.wait, window=2))
