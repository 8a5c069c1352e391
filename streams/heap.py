"""Keeps Python's cyclic garbage collector off the heap a process builds before it consumes.

A worker or scoring process holds a large heap of long-lived objects once it is up (Faust, aiokafka and chDB
in the worker; the evaluators and their rules or models in a scoring process: ~190,000 and ~560,000 objects).
Every full (generation 2) collection walks all of them: ~135 ms in the worker, ~250 ms in a scoring process
with the light evaluators. Measured with gc.callbacks over a 20,000-event light drain, the collector's time per
event went from 45 to 17 µs in the worker and from 18 to 5 µs in the scoring process: ~6 % of the pipeline's
CPU per event (the throughput difference itself is within this machine's noise).
`gc.freeze()` moves the heap as it is into the permanent generation, which collections skip; objects made
later are collected as before. What the heap held at the freeze is still freed by reference counting, only a
reference cycle among those objects would now stay (the price is bounded: it is the start-up heap).
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_startup_heap(who: str) -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many objects were frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "%s: %d start-up objects frozen out of garbage collection (%.2f s)", who, frozen, time.perf_counter() - started
    )
    return frozen
