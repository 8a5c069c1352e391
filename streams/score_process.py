"""The scoring process: decode → score → encode in a child process, one per worker.

Why a process: the worker's event loop runs Faust, both Kafka clients and the sink; with the light
evaluators scoring inline it was ~95 % busy, scoring ~40 % of it, while the second core did little
(`llmwatch bench pipeline`). Records cross as raw bytes and come back as encoded EvalScores, so the only
copies are of bytes. Models load in the child only; the worker itself needs none for scoring.

The child dies with the worker (Linux parent-death signal), so a `kill -9` of the worker leaves no orphan.
A child that dies (a native crash in a model) is restarted; a batch that kills it twice is scored one event
at a time, and the event that still kills it is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from llmwatch.local.lifetime import die_with_parent
from llmwatch.settings import Settings

from .heap import freeze_startup_heap
from .scoring import EventScorer, Failed, Outcome, Record, score_records

log = logging.getLogger(__name__)

_scorer: EventScorer | None = None  # in the child: built once by _init
_max_bytes = 0
_rows = False
_everyone: Any = None  # a barrier of all children, so that each takes one `_ready` call
READY_TIMEOUT_S = 600.0


def build_scorer(settings: Settings) -> EventScorer:
    """The evaluator suite of `settings.eval`, with redaction when it is on, warmed up."""
    from llmwatch.evaluators.base import load_suite

    redactor = None
    if settings.eval.redact:
        from llmwatch.evaluators.pii import redact

        redactor = redact
    suite = load_suite(settings)
    log.info("scoring with %s", ", ".join(sorted(set(suite.names.values()))) or "no evaluators")
    scorer = EventScorer(suite, redactor, settings.price_table)
    warm_up(scorer)
    return scorer


def warm_up(scorer: EventScorer) -> None:
    """Score one made-up event before consuming: lazy work (ONNX sessions' first run, the injection rules'
    Hyperscan database, presidio's recognizers) then happens at start, not in the first real events' latency."""
    from llmwatch.schemas import InferenceEvent

    started = time.perf_counter()
    event = InferenceEvent(
        deployment="llmwatch-warm-up",
        model="warm-up",
        model_version="warm-up",
        prompt="Warm-up: ignore nothing. Call +1 415 555 0100 or mail ops@example.com.",
        response="Warm-up answer. Paris is the capital of France.",
        context=["Paris is the capital of France."],
        ttft_ms=1.0,
        e2e_ms=2.0,
    )
    scorer.score([event])
    log.info("evaluators warmed up in %.1f s", time.perf_counter() - started)


def _init(settings_json: str, max_bytes: int, rows: bool, gc_freeze: bool, everyone: Any) -> None:
    global _scorer, _max_bytes, _rows, _everyone
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the worker decides
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [scoring] %(levelname)s %(name)s: %(message)s")
    _max_bytes, _rows, _everyone = max_bytes, rows, everyone
    _scorer = build_scorer(Settings.model_validate_json(settings_json))
    if gc_freeze:
        freeze_startup_heap("scoring process")


def _ready() -> int:
    """Returns once every child of the pool is ready (each holds one of these calls)."""
    assert _scorer is not None and _everyone is not None
    _everyone.wait(READY_TIMEOUT_S)
    return os.getpid()


def _score(records: Sequence[Record]) -> list[Outcome]:
    assert _scorer is not None
    return score_records(_scorer, records, max_bytes=_max_bytes, rows=_rows)


def _settings_for_child(settings: Settings) -> str:
    """What the child needs to build the same suite. Secrets are left out: they are masked in JSON, and
    scoring uses none of them."""
    return settings.model_dump_json(include={"eval", "cache_dir", "data_dir"})


class ScoringProcess:
    """The child process (`worker.score_processes` of them) that scores batches of records for the score agent."""

    def __init__(self, settings: Settings, *, rows: bool = False, on_restart: Callable[[], None] | None = None) -> None:
        """`rows`: scored events come back with their table rows (see `score_records`)."""
        self._on_restart = on_restart
        self._args = (_settings_for_child(settings), settings.worker.max_event_bytes, rows, settings.worker.gc_freeze)
        self._processes = settings.worker.score_processes
        self._readies: list[Future[int]] = []
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0
        self._generation = 0  # which child: bumped by each restart
        self._restarting = asyncio.Lock()
        self.pids: list[int] = []  # of every child, once ready

    def start(self) -> ScoringProcess:
        """Spawn the child (from the calling thread: the parent-death signal follows the thread that forks,
        so this must be the worker's main thread) and begin its warm-up; `wait_ready` waits for it."""
        ctx = multiprocessing.get_context("spawn")  # fork would copy Faust's threads and locks mid-use
        # one call per child at once, each held until all children took one: a spawn pool starts a child only
        # when a call finds none idle, and a child started later would build and warm up its evaluators under load
        everyone = ctx.Barrier(self._processes)
        self._pool = ProcessPoolExecutor(
            max_workers=self._processes, mp_context=ctx, initializer=_init, initargs=(*self._args, everyone)
        )
        from .patches import widen_pipes  # here, not at the top: the children import this module, not Faust

        widen_pipes(self._pool)
        self._readies = [self._pool.submit(_ready) for _ in range(self._processes)]
        return self

    @property
    def pid(self) -> int | None:
        """Of a child (the first when there are several), once ready."""
        return self.pids[0] if self.pids else None

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """Block until the child has built and warmed up its evaluators; their errors (a model missing)
        surface here, at the worker's start."""
        assert self._readies, "start() first"
        started = time.monotonic()
        self.pids = [ready.result(timeout=timeout_s) for ready in self._readies]  # one per child (the barrier)
        log.info("scoring processes %s ready (waited %.1f s)", self.pids, time.monotonic() - started)

    async def score(self, records: Sequence[Record]) -> list[Outcome]:
        """Several batches may be in flight: when the child dies, all of them fail at once. The first to see
        it restarts the child, the others resubmit to the new one; a batch whose own two tries both met a
        dead child is scored one event at a time."""
        for attempt in (1, 2):
            generation = self._generation
            try:
                return await self._submit(records)
            except BrokenProcessPool:
                log.error("the scoring process died with a batch of %d in it (try %d)", len(records), attempt)
                await self._restart(generation)
        log.error("the scoring process died twice with this batch in it; scoring it one event at a time")
        return [await self._score_alone(r) for r in records]

    async def _score_alone(self, record: Record) -> Outcome:
        generation = self._generation
        try:
            return (await self._submit([record]))[0]
        except BrokenProcessPool:
            await self._restart(generation)
            return Failed("the scoring process died scoring this event")

    async def _submit(self, records: Sequence[Record]) -> list[Outcome]:
        assert self._pool is not None
        return await asyncio.wrap_future(self._pool.submit(_score, list(records)))

    async def _restart(self, broken: int) -> None:
        """Restart the child that was current at generation `broken`, unless another batch already did."""
        async with self._restarting:
            if self._generation != broken:
                return
            self.restarts += 1
            if self._on_restart is not None:
                self._on_restart()
            self.close()
            self.start()  # in the loop's (main) thread, see start()
            self.pids = list(await asyncio.gather(*(asyncio.wrap_future(r) for r in self._readies)))
            self._generation += 1
            log.info("scoring process %d ready after restart %d", self.pid, self.restarts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
