"""One way to wait on a running system: poll a predicate, fail with what is known when it does not come true.

Errors are LlmwatchErrors, so `llmwatch bench …` and `llmwatch demo` print them without a traceback, and a test
shows the same message pytest would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from llmwatch.errors import LlmwatchError

T = TypeVar("T")


class Watched(Protocol):
    """What a wait needs of a process it watches (ChildProcess has it)."""

    name: str

    def alive(self) -> bool: ...

    def log_tail(self, lines: int = 40) -> str: ...


class HarnessError(LlmwatchError):
    """A part the harness started did not do what was waited for."""


class WaitTimeout(HarnessError):
    """The predicate did not come true in time; the message says what was awaited and the last state seen."""


class ProcessDied(HarnessError):
    """A child process exited while something was awaited from it; the message carries its log tail."""


def wait_for(
    predicate: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 1.0,
    processes: Iterable[Watched | None] = (),
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll `predicate()` until it returns a truthy value and return that value.

    An exception raised by the predicate counts as "not yet" (a query against a worker still starting). Raises
    ProcessDied as soon as one of `processes` has exited, and WaitTimeout after `timeout_s` with the last value or
    error seen, `describe()` (the state it got stuck in) and the log tail of each process.
    """
    watched = [p for p in processes if p is not None]
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # not ready yet: keep the error to show on timeout
            last = e
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        for process in watched:
            if not process.alive():
                raise ProcessDied(f"{process.name} exited while waiting for {what}:\n{process.log_tail()}")
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    state = ""
    if describe is not None:
        try:
            state = describe()
        except Exception as e:
            state = f"(could not describe the state: {e})"
    tails = "\n".join(f"--- {p.name} log ---\n{p.log_tail()}" for p in watched)
    raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})\n{state}\n{tails}".rstrip())
