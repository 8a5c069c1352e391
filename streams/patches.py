"""Every place llmwatch reaches below the public API of Faust, aiokafka or the standard library, in one module.

Each one says why it exists and what it falls back to. `PINNED` holds the versions they were written and
checked against: tests/unit/streams/test_patches.py fails when an installed version differs (read each patch
against the new version's source, re-measure where its docstring says, then move the pin), and a worker logs a
warning at start (it still runs: each patch falls back where it can).

1. `Transport` / `Consumer` / `ConsumerThread`: Faust's aiokafka transport with a cheaper record hand-off (it
   recognises Faust's `suspend_flow.wait()` coroutine by reading its frame's locals) and aiokafka's private
   `_fetch_max_wait_ms` set after Faust built the consumer.
2. `widen_pipes`: the private pipes of a `ProcessPoolExecutor` (the scoring process) widened to 1 MiB.
3. `committed_offsets`: Faust's consumer keeps its committed offsets in a private attribute (the lag metric).
4. `SingleOwnerAssignor`: Faust's partition assignor with its private `_perform_assignment` replaced, so that a
   consumer group gives every partition to one member (the judge, controller and alerter run once).
5. `assignor_setting`: the assignor class goes in through Faust's settings.
Not a patch but tied to these versions as well: streams/hold.py works around how faust-streaming 0.15.3 commits
acked offsets (`Consumer._new_offset`), and llmwatch/logfilters.py demotes Faust's and aiokafka's rebalance log
lines by their text (the test checks those texts still exist in the installed sources).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine, Mapping
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from typing import Any

import aiokafka
from faust.assignor.client_assignment import ClientAssignment
from faust.assignor.partition_assignor import PartitionAssignor
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

log = logging.getLogger(__name__)

#: distribution (or "python") → the version every patch here was checked against (Python: major.minor)
PINNED: dict[str, str] = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "python": "3.11"}


def installed_versions() -> dict[str, str]:
    return {
        "faust-streaming": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def version_mismatches() -> list[str]:
    """`name pinned → installed` for every version that differs from PINNED."""
    found = installed_versions()
    return [f"{name} {pin} → {found[name]}" for name, pin in PINNED.items() if found[name] != pin]


def warn_on_version_mismatch() -> None:
    mismatches = version_mismatches()
    if mismatches:
        log.warning(
            "llmwatch.streams.patches was checked against other versions (%s): its Faust/aiokafka patches may "
            "not hold; see that module",
            ", ".join(mismatches),
        )


# --- 1. the transport ------------------------------------------------------------------------------------------
class Consumer(faust_aiokafka.Consumer):
    """Faust's consumer hands every record to the agents' channels through `Service.wait_first(on_message(record),
    suspend_flow.wait())`: four tasks, an `asyncio.wait` and three cancellations per record, so that a rebalance
    (which sets `suspend_flow`) can abandon a hand-off blocked on a full stream buffer. Almost every hand-off
    finishes in its first step, and that machinery was ~13 % of the worker's event loop with a backlog (py-spy,
    `llmwatch bench pipeline`). Here the hand-off runs as one task; only one that does not finish in its first
    step is watched for a rebalance or stop, by Faust's own `wait_first`, exactly as before. A call that does
    not look like the hand-off (`_is_handoff`: another Faust) takes Faust's path unchanged."""

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
    """Whether `coros` is Faust's (record hand-off, `suspend_flow.wait()`) pair: the second coroutine's frame
    holds `self` = the consumer's suspend_flow event (a coroutine frame's locals: CPython internals)."""
    handoff, flow_wait = coros
    if not isinstance(handoff, Coroutine) or not isinstance(flow_wait, Coroutine):
        return False
    frame = getattr(flow_wait, "cr_frame", None)
    return frame is not None and frame.f_locals.get("self") is suspend_flow


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Its consumer waits at most `worker.fetch_max_wait_ms` for new data per fetch instead of Faust's fixed
    1,500 ms. aiokafka keeps one fetch in flight per broker: once a backlog was read, a fetch of those partitions
    (nothing new) held back the next fetch of every other partition for 1.5 s, so the window agent got the scores
    in bursts 1-1.5 s apart while the score agent was publishing them."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (a private attribute: the constructor is Faust's to call)
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    fetch_max_wait_ms = 100  # create_app sets the worker's setting


# --- 2. the scoring process's pipes --------------------------------------------------------------------------------
#: Bytes a pipe to or from the child holds (Linux caps it at /proc/sys/fs/pipe-max-size, 1 MiB by default).
PIPE_BYTES = 1024 * 1024


def widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Give the pool's pipes 1 MiB instead of 64 KiB. A batch of 256 scored events comes back as ~1.5 MB: through
    64 KiB the child blocked in the write ~23 % of its time, until the worker's reader thread, which needs the GIL
    for every 64 KiB read, caught up (py-spy, `llmwatch bench pipeline`). Private attributes of the pool: where they
    are missing (another Python), the pipes keep their default size."""
    import fcntl

    try:
        ends = [pool._result_queue._reader, pool._call_queue._reader]  # type: ignore[attr-defined]
        for end in ends:
            fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError) as e:
        log.info("scoring process pipes keep their default size (%s)", e)


# --- 3. committed offsets -------------------------------------------------------------------------------------------
def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """The offsets Faust's consumer last committed, per TP (Faust keeps no public accessor; empty if it moved)."""
    found = getattr(consumer, "_committed_offset", None)
    return found if isinstance(found, Mapping) else {}


# --- 4. one owner per consumer group --------------------------------------------------------------------------------
class SingleOwnerAssignor(PartitionAssignor):
    """Every partition of the group's topics to one member; the others get nothing and stand by.

    For the roles that must run once per deployment (judge, controller, alerter): the leader of the Kafka group
    picks the owner at each rebalance — the member that owned the partitions before (sticky; the lowest member id
    among them if several say so, e.g. one that was dropped from the group for silence and came back), else the
    lowest member id. When the owner dies, its session times out and the next rebalance hands everything to a
    standby. Faust's own assignor spreads partitions; its `_perform_assignment` is replaced here, and its
    protocol-building helpers are reused (private methods: see PINNED). The protocol has its own name, so a member
    with Faust's assignor cannot join such a group by mistake (the broker refuses mismatched protocols)."""

    @property
    def name(self) -> str:
        return "llmwatch-single-owner"

    def _perform_assignment(self, cluster: Any, member_metadata: Mapping[str, Any]) -> Any:
        clients = {member: self._get_client_metadata(meta) for member, meta in member_metadata.items()}
        self._update_member_urls(clients)
        owned_before = sorted(m for m, c in clients.items() if any(c.assignment.actives.values()))
        owner = owned_before[0] if owned_before else min(member_metadata)
        topics = sorted({t for meta in member_metadata.values() for t in meta.subscription})
        actives = {t: sorted(cluster.partitions_for_topic(t) or ()) for t in topics}
        actives = {t: ps for t, ps in actives.items() if ps}  # a missing topic: nothing to assign yet
        assignments = {
            member: ClientAssignment(actives=dict(actives) if member == owner else {}, standbys={})
            for member in member_metadata
        }
        log.info(
            "group assignment: all %d partitions of %s to %s (%d members; owner before: %s)",
            sum(len(p) for p in actives.values()),
            ", ".join(actives) or "nothing",
            owner,
            len(member_metadata),
            owned_before[0] if owned_before else "none",
        )
        return self._protocol_assignments(
            assignments,
            self._get_changelog_distribution(assignments),
            self._get_external_topic_distribution(assignments),
            {t: 0 for t in actives},
        )


# --- 5. choosing the assignor ------------------------------------------------------------------------------------
def assignor_setting(single_owner: bool) -> dict[str, Any]:
    """The faust.App keyword that selects the assignor (Faust reads the class from its settings)."""
    return {"PartitionAssignor": SingleOwnerAssignor} if single_owner else {}
