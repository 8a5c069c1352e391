"""The ready SQL spells each metric the one way evaluators/metrics.py defines it (the integration test
tests/integration/test_metric_definitions.py runs the same events through every consumer)."""

from __future__ import annotations

import re

import pytest

from llmwatch.db.ready import ready_queries
from llmwatch.evaluators.metrics import SQL_PREDICATES, Thresholds, at_or_above, is_error, is_latency_sample

#: ways a metric used to be spelled that disagree with its definition
DIVERGENT = {
    "errors counted with cancelled requests": re.compile(r"status\s*!=\s*'ok'"),
    "a threshold compared with >": re.compile(r"(toxicity_\w+|injection|hallucination)\s*>\s*[{\d]"),
    "a threshold written as a constant": re.compile(r"\d\.\d+\s+AS\s+threshold", re.I),
}


@pytest.mark.parametrize("name", sorted(ready_queries()))
def test_ready_queries_use_the_definitions(name: str) -> None:
    sql = ready_queries()[name].sql
    for what, pattern in DIVERGENT.items():
        assert not pattern.search(sql), f"{name}: {what}"
    if "toxicity_response >=" in sql:
        assert SQL_PREDICATES["is_toxic"] in sql
    if "status = 'error'" in sql:
        assert SQL_PREDICATES["counts_for_errors"] in sql, f"{name}: an error rate over every request"


def test_predicates_by_hand() -> None:
    assert at_or_above(0.5, 0.5) is True and at_or_above(0.4999, 0.5) is False and at_or_above(None, 0.5) is None
    assert is_error("error") and not is_error("cancelled") and not is_error("ok")
    assert is_latency_sample("ok") and not is_latency_sample("error") and not is_latency_sample("cancelled")
    assert set(Thresholds().sql_parameters()) == {
        m for p in SQL_PREDICATES.values() for m in re.findall(r"\{(\w+):", p)
    }
