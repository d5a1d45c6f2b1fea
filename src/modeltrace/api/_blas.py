"""One BLAS thread for the facade's numeric work, in one place.

The lineage statistics and the local reference forward pass multiply many small matrices; on a
2-core machine under load, OpenBLAS's worker threads made a compare up to ~40x slower (28.8 s vs
0.7 s measured during development) and a local forward pass about 4x slower (0.9 s vs 3.5 s per
token, ``benchmarks/probe_local_forward.py``), so the facade pins BLAS to one thread while it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # imported on use: it inspects loaded libraries

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def single_threaded_blas(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``function`` inside :func:`one_blas_thread`."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with one_blas_thread():
            return function(*args, **kwargs)

    return wrapper
