"""The patches of Faust, aiokafka and stdlib internals (streams/patches.py) were written against pinned versions.

An upgrade must fail here, loudly: read each patch against the new version's source, re-measure where its docstring
says, then move `PINNED`. The other checks say which private name a patch relies on has gone."""

from __future__ import annotations

import inspect
from concurrent.futures import ProcessPoolExecutor

import aiokafka
import aiokafka.consumer.group_coordinator as coordinator
import faust.transport.consumer as faust_consumer
from faust.assignor.partition_assignor import PartitionAssignor
from faust.transport.drivers import aiokafka as faust_aiokafka

from llmwatch.logfilters import REBALANCE_LINES
from llmwatch.streams import patches


def test_installed_versions_are_the_pinned_ones() -> None:
    assert patches.version_mismatches() == [], (
        "faust-streaming, aiokafka or Python changed: check every patch in llmwatch/streams/patches.py against the "
        "new version, then update PINNED"
    )


def test_the_private_names_the_patches_use_exist() -> None:
    assert callable(faust_aiokafka.Consumer._new_consumer_thread)
    assert callable(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "self" in inspect.signature(faust_consumer.Consumer.wait_first).parameters
    for name in (
        "_perform_assignment",
        "_get_client_metadata",
        "_update_member_urls",
        "_protocol_assignments",
        "_get_changelog_distribution",
        "_get_external_topic_distribution",
    ):
        assert callable(getattr(PartitionAssignor, name)), name
    assert "_committed_offset" in inspect.getsource(faust_consumer.Consumer.__init__)
    # set by the constructor, read when the consumer starts its fetcher: what ConsumerThread overrides in between
    source = inspect.getsource(aiokafka.AIOKafkaConsumer)
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in source
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source
    # Faust's hand-off is (on_message(record), suspend_flow.wait()): what `_is_handoff` recognises
    assert "self.suspend_flow.wait()" in inspect.getsource(faust_consumer)


def test_the_pool_pipes_exist() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(int, "1").result(timeout=60)
        assert pool._result_queue._reader.fileno() >= 0  # type: ignore[attr-defined]
        assert pool._call_queue._reader.fileno() >= 0  # type: ignore[attr-defined]


def test_the_log_lines_demoted_still_exist() -> None:
    sources = {
        "aiokafka.consumer.group_coordinator": inspect.getsource(coordinator),
        "faust.transport.drivers.aiokafka": inspect.getsource(faust_aiokafka),
    }
    for logger, rules in REBALANCE_LINES.items():
        for fragment, _level, _meaning in rules:
            assert fragment in sources[logger], f"{logger} no longer logs {fragment!r}"
