"""WeightsView: the one rule every reader of the weights topic applies (order, fencing, tombstones, bad records);
and cancel_and_wait, which stops a reader without swallowing a cancellation aimed at its caller."""

from __future__ import annotations

import asyncio

import pytest

from llmwatch.local.aio import cancel_and_wait
from llmwatch.schemas import TrafficWeights
from llmwatch.weights_topic import WeightsChange, WeightsView


def w(seq: int, epoch: int = 0, deployment: str = "demo", canary: float = 0.1) -> TrafficWeights:
    return TrafficWeights(
        deployment=deployment,
        weights={"v1": 1 - canary, "v2": canary},
        baseline_version="v1",
        canary_version="v2",
        state="progressing",
        seq=seq,
        epoch=epoch,
    )


def test_records_apply_in_epoch_then_seq_order() -> None:
    view = WeightsView()
    first = w(1)
    assert view.apply(first) == WeightsChange("demo", first)
    assert view.apply(first) is None  # a replayed copy
    assert view.apply(w(3)) is not None
    assert view.apply(w(2)) is None  # older
    assert view.latest["demo"].seq == 3 and (view.applied, view.rejected) == (2, 2)


def test_a_lower_epoch_is_fenced_on_every_deployment() -> None:
    view = WeightsView()
    view.apply(w(5, epoch=1))
    assert view.apply(w(5, epoch=2)) is not None  # the controller that took over re-stamps the state
    assert "stale epoch 1" in (view.stale(w(9, epoch=1)) or "")
    assert view.apply(w(9, epoch=1)) is None
    assert view.apply(w(1, epoch=1, deployment="new")) is None  # one it never wrote before, too
    assert view.apply(w(1, epoch=2, deployment="new")) is not None
    assert view.epoch == 2 and view.latest["demo"].epoch == 2


def test_tombstone_deletes_and_bad_records_are_skipped() -> None:
    view = WeightsView()
    view.apply_record(b"demo", w(4).encode())
    assert view.apply_record(b"demo", None) == WeightsChange("demo", None)
    assert "demo" not in view.latest
    assert view.apply_record(None, None) is None  # a tombstone without a key names nothing
    assert view.apply_record(b"demo", b"{not json") is None and view.unreadable == 1
    assert view.apply_record(b"demo", w(1).encode()) is not None  # after a delete, the deployment starts over


async def test_cancel_and_wait_swallows_the_task_cancellation_only() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(forever())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # the task's own cancellation: swallowed
    assert task.cancelled()

    # the caller is cancelled while it waits for a task that takes its time to end: the caller must see it
    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.2)

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    caller = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0.05)
    caller.cancel()  # e.g. Ctrl-C reaching a shutdown that is stopping a reader
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()


def test_an_epoch_belongs_to_the_controller_that_wrote_it_first() -> None:
    """Two controllers that took the same epoch at once (two consumer groups): the second one is fenced."""
    view = WeightsView()
    first = w(1, epoch=3).model_copy(update={"controller": "a"})
    assert view.apply(first) is not None and view.epoch_owner == "a"
    second = w(1, epoch=3, deployment="other").model_copy(update={"controller": "b"})
    assert view.apply(second) is None and "belongs to controller a" in (view.last_rejected or (None, ""))[1]
    assert view.apply(w(2, epoch=3).model_copy(update={"controller": "a"})) is not None
    assert view.apply(w(1, epoch=4, deployment="other").model_copy(update={"controller": "b"})) is not None
    assert view.epoch_owner == "b"
