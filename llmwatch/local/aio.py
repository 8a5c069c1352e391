"""Run a coroutine from sync code without touching the thread's current event loop.

`asyncio.run` ends with `set_event_loop(None)`, which breaks a caller that keeps a loop of its own
(pytest-asyncio's session loop, a host application); a private loop leaves it alone. Called from inside
a running loop (a sync fixture used by an async test), it runs on a private loop in a helper thread and
blocks the caller until done: meant for setup and admin calls, not for hot paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _run_private(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a private event loop and return its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_private(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmwatch-run-sync") as pool:
        return pool.submit(_run_private, coro).result()


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended, without losing a cancellation aimed at the caller.

    The usual `task.cancel(); with suppress(CancelledError): await task` also swallows the CancelledError
    raised when the *caller* is cancelled while it waits (a Ctrl-C reaching a shutdown path), and the caller
    then carries on as if nothing happened. Here the task's own cancellation is swallowed and the caller's is
    re-raised (`Task.cancelling()`). Any other exception of the task propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
