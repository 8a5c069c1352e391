"""Faust's aiokafka transport with a cheaper hand-off of each fetched record to the agents.

Faust's consumer hands every record to the agents' channels through `Service.wait_first(on_message(record),
suspend_flow.wait())`: four tasks, an `asyncio.wait` and three cancellations per record, so that a rebalance
(which sets `suspend_flow`) can abandon a hand-off blocked on a full stream buffer. Almost every hand-off
finishes in its first step, and that machinery was ~13 % of the worker's event loop with a backlog (py-spy,
`llmwatch bench pipeline`). Here the hand-off runs as one task; only one that does not finish in its first step
is watched for a rebalance or stop, by Faust's own `wait_first`, exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


class Consumer(faust_aiokafka.Consumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is not None or len(coros) != 2 or not _is_handoff(coros, self.suspend_flow):
            return await super().wait_first(*coros, timeout=timeout)
        handoff, flow_wait = coros
        flow_wait.close()  # watched below only if the hand-off has to wait
        task: asyncio.Future[Any] = asyncio.ensure_future(handoff)
        try:
            await asyncio.sleep(0)  # the task's first step runs before we resume
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.done():
            return await super().wait_first(task, self.suspend_flow.wait())
        if self._stopped.is_set() or self._crashed.is_set():
            return WaitResults([], [], True)
        return WaitResults([handoff], [task.result()], False)


def _is_handoff(coros: tuple[Any, ...], suspend_flow: object) -> bool:
    handoff, flow_wait = coros
    if not isinstance(handoff, Coroutine) or not isinstance(flow_wait, Coroutine):
        return False
    frame = getattr(flow_wait, "cr_frame", None)
    return frame is not None and frame.f_locals.get("self") is suspend_flow


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
