"""Wall-clock timing: the one latency loop, used by the bench worker (``edge-fgic bench``) and the benchmark
scripts alike, so every committed latency comes from the same loop."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_calls(fn: Callable[[], object], runs: int, *, warmup: int = 0, min_seconds: float = 0.0,
               max_seconds: float | None = None, after: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of each timed ``fn()`` call, after ``warmup`` untimed calls.

    At least ``runs`` calls and at least ``min_seconds`` of them (energy measurements need the loop to span
    several power samples); past ``max_seconds`` it stops as soon as it has 10. ``after()`` runs after each
    call, outside the timed span (e.g. to read a GPU-side timer)."""
    for _ in range(warmup):
        fn()
    ms: list[float] = []
    t0 = time.perf_counter()
    budget = t0 + max_seconds if max_seconds is not None else float("inf")
    while True:
        t = time.perf_counter()
        fn()
        ms.append(1000 * (time.perf_counter() - t))
        if after is not None:
            after()
        now = time.perf_counter()
        if (len(ms) >= runs and now - t0 >= min_seconds) or (now > budget and len(ms) >= 10):
            return ms


def median_ms(fn: Callable[[], object], runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``runs`` calls after ``warmup`` calls."""
    return statistics.median(time_calls(fn, runs, warmup=warmup))
