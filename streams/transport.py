"""Faust's aiokafka transport with a cheaper hand-off of each fetched record to the agents.

Faust's consumer hands every record to the agents' channels through `Service.wait_first(on_message(record),
suspend_flow.wait())`: four tasks, an `asyncio.wait` and three cancellations per record, so that a rebalance
(which sets `suspend_flow`) can abandon a hand-off blocked on a full stream buffer. Almost every hand-off
finishes in its first step, and that machinery was ~13 % of the worker's event loop with a backlog (py-spy,
`llmwatch bench pipeline`). Here the hand-off runs as one task; only one that does not finish in its first step
is watched for a rebalance or stop, by Faust's own `wait_first`, exactly as before.

Its consumer also waits at most `worker.fetch_max_wait_ms` for new data per fetch instead of Faust's fixed
1,500 ms. aiokafka keeps one fetch in flight per broker: once a backlog was read, a fetch of those partitions
(nothing new) held back the next fetch of every other partition for 1.5 s, so the window agent got the scores
in bursts 1-1.5 s apart while the score agent was publishing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

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


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes it at 1,500 ms; aiokafka reads it when the consumer starts (a private attribute: its
        # constructor is Faust's to call)
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    fetch_max_wait_ms = 100  # create_app sets the worker's setting
