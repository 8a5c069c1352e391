"""Alert rules, the dedup state machine, receiver formats, and webhook delivery against a real local server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from llmwatch.schemas import Alert, CanaryVerdict, WindowMetrics
from llmwatch.settings import AlertSettings, Settings
from llmwatch.streams.alerter_agent import Alerter, AlertmanagerTarget, Notifier, Target, targets_from
from llmwatch.streams.alerting import (
    ZERO_TIME,
    AlertBook,
    Condition,
    Decor,
    WindowRuleBook,
    alertmanager_payload,
    fingerprint,
    postable_alert,
    slack_payload,
    verdict_conditions,
    window_rules,
)
from llmwatch.streams.rollout import AlertIntent

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
#: the receivers are started by a (session-loop) fixture, so the tests that use them run on that loop too
session_loop = pytest.mark.asyncio(loop_scope="session")


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def window(start_s: float, *, version: str = "v1", ttft_p95: float | None = 150.0, count: int = 100, **kw: Any):
    return WindowMetrics(
        window_id=f"d/{version}/{start_s}",
        window_start=at(start_s),
        window_end=at(start_s + 60),
        size_s=60,
        deployment="d",
        model_version=version,
        count=count,
        ttft_p95_ms=ttft_p95,
        **kw,
    )


def verdict(result: str, s: float = 0) -> CanaryVerdict:
    return CanaryVerdict(
        deployment="d",
        baseline_version="v1",
        canary_version="v2",
        judge="msprt@1",
        result=result,  # type: ignore[arg-type]
        reason=f"because {result}",
        ts=at(s),
        window_start=at(0),
        window_end=at(s),
        canary_n=300,
        baseline_n=1200,
    )


RULES = window_rules(ttft_p95_ms=300, error_rate=0.05, pii_leak_rate=0.01, injection_success_rate=None, min_count=20)


# ----------------------------------------------------------------------------------------------- rules
def test_rules_off_when_threshold_is_empty() -> None:
    assert [r.name for r in RULES] == ["ttft_p95_high", "error_rate_high", "pii_leak_rate_high"]


def test_window_rule_needs_enough_requests_and_the_metric() -> None:
    ttft = RULES[0]
    assert ttft.breach(window(0, ttft_p95=301)) is True
    assert ttft.breach(window(0, ttft_p95=300)) is False  # strictly above
    assert ttft.breach(window(0, ttft_p95=900, count=19)) is None
    assert ttft.breach(window(0, ttft_p95=None)) is None


def test_rule_is_active_per_model_version_while_any_of_its_series_breaches() -> None:
    book = WindowRuleBook([RULES[0]])
    (c,) = book.observe(window(0, version="v1", ttft_p95=400))
    assert c.active and "400 ms" in c.summary and c.model_version == "v1" and c.labels["model_version"] == "v1"
    (c,) = book.observe(window(0, version="v2", ttft_p95=500))
    assert c.active and "500 ms" in c.summary and c.model_version == "v2"  # its own alert: the page names it
    (c,) = book.observe(window(0, version="v1", ttft_p95=600, prompt_version="p2"))
    assert c.active and "600 ms" in c.summary and c.labels["series"] == "v1/baseline/p2"  # the worst series
    (c,) = book.observe(window(60, version="v1", ttft_p95=100))
    assert c.active and c.model_version == "v1"  # v1's other series still breaches
    (c,) = book.observe(window(60, version="v1", ttft_p95=100, prompt_version="p2"))
    assert not c.active and c.model_version == "v1"
    (c,) = book.observe(window(60, version="v2", ttft_p95=100))
    assert not c.active and c.model_version == "v2"


def test_early_and_out_of_date_windows_change_nothing() -> None:
    book = WindowRuleBook([RULES[0]])
    assert book.observe(window(0, ttft_p95=900, final=False)) == []
    book.observe(window(120, ttft_p95=100))
    assert book.observe(window(60, ttft_p95=900)) == []  # a late re-emit of an older window


def test_verdict_rule_fires_on_fail_and_clears_on_anything_else() -> None:
    c, srm = verdict_conditions(verdict("fail"))
    assert c.active and c.rule == "canary_failed" and c.severity == "critical" and c.verdict_id
    assert "because fail" in c.summary and c.labels["canary_version"] == c.labels["model_version"] == "v2"
    assert c.model_version is None  # one per deployment: the next rollout's verdict clears it
    assert srm.rule == "canary_sample_ratio_mismatch" and not srm.active
    c, _ = verdict_conditions(verdict("inconclusive"))
    assert not c.active


def test_sample_ratio_mismatch_fires_while_the_judge_flags_it() -> None:
    flagged = verdict("inconclusive").model_copy(
        update={"srm_detected": True, "observed_share": 0.005, "canary_weight": 0.01}
    )
    _, srm = verdict_conditions(flagged)
    assert srm.active and srm.severity == "critical" and srm.verdict_id == flagged.verdict_id
    assert "0.50% of requests at weight 1%" in srm.summary and "holds" in srm.summary
    book = AlertBook(renotify_s=600)
    assert book.observe(srm, at(0)) is not None
    _, cleared = verdict_conditions(verdict("inconclusive"))
    resolved = book.observe(cleared, at(30))
    assert resolved is not None and resolved.status == "resolved"


# ----------------------------------------------------------------------------------------------- dedup
def cond(active: bool, rule: str = "ttft_p95_high") -> Condition:
    return Condition("d", rule, active, "warning", f"{rule} {'on' if active else 'off'}")


def test_dedup_state_machine() -> None:
    book = AlertBook(renotify_s=600)
    assert book.observe(cond(False), at(0)) is None  # nothing firing, nothing to resolve
    first = book.observe(cond(True), at(10))
    assert first is not None and first.status == "firing" and first.starts_at == at(10) and first.ends_at is None
    assert first.fingerprint == fingerprint("d", "ttft_p95_high") and first.labels["source"] == "alerter"
    assert book.observe(cond(True), at(100)) is None  # deduplicated
    assert book.observe(cond(True), at(609)) is None
    again = book.observe(cond(True), at(610))  # re-notify interval passed
    assert again is not None and again.status == "firing" and again.starts_at == at(10)
    assert again.alert_id != first.alert_id
    resolved = book.observe(cond(False), at(700))
    assert resolved is not None and resolved.status == "resolved" and resolved.ends_at == at(700)
    assert resolved.starts_at == at(10) and resolved.summary.startswith("resolved:")
    assert book.observe(cond(False), at(710)) is None  # resolved once
    assert book.firing() == []
    refire = book.observe(cond(True), at(720))
    assert refire is not None and refire.starts_at == at(720)  # a new episode


def test_keys_are_independent() -> None:
    book = AlertBook(renotify_s=600)
    assert book.observe(cond(True, "a"), at(0)) is not None
    assert book.observe(cond(True, "b"), at(1)) is not None
    assert book.firing() == [("d", "a", None), ("d", "b", None)]


def controller_alert(s: float) -> Alert:
    intent = AlertIntent(deployment="d", rule="canary_failed", severity="critical", summary="rolled back")
    return intent.to_alert(at(s)).model_copy(update={"labels": {"source": "controller"}})


def test_controller_alert_and_own_canary_failed_page_once() -> None:
    own_first = AlertBook(renotify_s=600)
    assert own_first.observe(verdict_conditions(verdict("fail"))[0], at(0)) is not None
    assert own_first.observe_external(controller_alert(1), at(1)) is False
    assert own_first.observe_external(controller_alert(700), at(700)) is True  # past the re-notify interval

    controller_first = AlertBook(renotify_s=600)
    assert controller_first.observe_external(controller_alert(0), at(0)) is True
    assert controller_first.observe(verdict_conditions(verdict("fail"))[0], at(1)) is None
    assert controller_first.firing() == [("d", "canary_failed", None)]  # still tracked, so it resolves later
    resolved = controller_first.observe(verdict_conditions(verdict("pass"))[0], at(50))
    assert resolved is not None and resolved.status == "resolved"


# --------------------------------------------------------------------------------------------- formats
def test_alertmanager_payload_is_version_4() -> None:
    firing = AlertBook(renotify_s=60).observe(verdict_conditions(verdict("fail"))[0], at(0))
    assert firing is not None
    body = alertmanager_payload([firing])
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "llmwatch"
    assert body["groupLabels"] == {"alertname": "canary_failed", "deployment": "d"}
    assert body["groupKey"] == '{}:{alertname="canary_failed",deployment="d"}'
    (a,) = body["alerts"]
    assert a["labels"]["alertname"] == "canary_failed" and a["labels"]["severity"] == "critical"
    assert a["startsAt"] == "2026-11-22T12:00:00Z" and a["endsAt"] == ZERO_TIME
    assert a["annotations"]["verdict_id"] == firing.verdict_id and a["fingerprint"] == firing.fingerprint
    json.dumps(body)  # serialisable as is
    with pytest.raises(ValueError):
        alertmanager_payload([])


def test_slack_text_says_what_and_where() -> None:
    book = AlertBook(renotify_s=60)
    firing = book.observe(cond(True), at(0))
    resolved = book.observe(cond(False), at(5))
    assert firing is not None and resolved is not None
    assert slack_payload(firing)["text"].startswith(":warning: *WARNING* ttft_p95_high on d")
    assert slack_payload(resolved)["text"].startswith(":white_check_mark: *RESOLVED* ttft_p95_high on d")


def test_targets_follow_settings() -> None:
    assert targets_from(Settings()) == []
    s = Settings(
        alerts=AlertSettings(alertmanager_url="http://am:9093", webhook="http://a/x", slack_webhook="http://b/y")
    )
    targets = targets_from(s)
    assert [t.name for t in targets] == ["alertmanager", "webhook", "slack"]
    assert targets[0].url == "http://am:9093/api/v2/alerts"


def test_old_worker_webhook_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMWATCH_WORKER__ALERT_WEBHOOK", "http://a/x")
    monkeypatch.setenv("LLMWATCH_WORKER__SLACK_WEBHOOK", "http://b/y")
    assert [t.name for t in targets_from(Settings())] == ["webhook", "slack"]


# ------------------------------------------------------------------------------------ Alertmanager v2 API
def test_postable_alert_has_the_labels_that_route_and_the_annotations_on_call_reads() -> None:
    a = AlertBook(renotify_s=60).observe(verdict_conditions(verdict("fail"))[0], at(0))
    assert a is not None
    decor = Decor(runbook_url="https://docs.example/operators.md", teams={"d": "search", "*": "ml"})
    body = postable_alert(a, at(240), decor)
    assert set(body) == {"labels", "annotations", "startsAt", "endsAt"}
    assert body["labels"] == {
        "alertname": "canary_failed",
        "severity": "critical",
        "deployment": "d",
        "model_version": "v2",
        "team": "search",
    }
    ann = body["annotations"]
    assert ann["summary"].startswith("canary v2 of d failed") and "failing metrics" in ann["description"]
    assert ann["runbook_url"] == "https://docs.example/operators.md#canary_failed"
    assert ann["verdict_id"] == a.verdict_id
    assert ann["query"] == f"llmwatch db ready canary_metric_results --param verdict_id={a.verdict_id}"
    assert ann["baseline_version"] == "v1" and ann["judge"] == "msprt@1" and "source" in ann  # other labels
    assert body["startsAt"] == "2026-11-22T12:00:00Z" and body["endsAt"] == "2026-11-22T12:04:00Z"
    assert postable_alert(a, None, Decor(teams={"*": "ml"}))["labels"]["team"] == "ml"
    assert "team" not in postable_alert(a, None)["labels"] and "endsAt" not in postable_alert(a, None)
    json.dumps(body)


def test_alertmanager_target_fires_confirms_and_resolves() -> None:
    t = AlertmanagerTarget("http://am:9093/", resend_s=60, event_s=3600, decor=Decor())
    book = AlertBook(renotify_s=600)
    firing = book.observe(cond(True), at(0))
    assert firing is not None
    (body,) = t.body(firing, at(0))
    assert body["endsAt"] == "2026-11-22T12:04:00Z"  # 4 × resend_s: confirmed by re-posts until it clears
    (again,) = t.repost_body(at(60))
    assert again["endsAt"] == "2026-11-22T12:05:00Z" and again["startsAt"] == body["startsAt"]
    resolved = book.observe(cond(False), at(90))
    assert resolved is not None
    (body,) = t.body(resolved, at(90))
    assert body["endsAt"] == "2026-11-22T12:01:30Z" and body["labels"]["alertname"] == "ttft_p95_high"
    assert t.repost_body(at(120)) == []


def test_alertmanager_target_ends_an_old_label_set_and_events_expire() -> None:
    t = AlertmanagerTarget("http://am:9093", resend_s=60, event_s=3600, decor=Decor())
    book = AlertBook(renotify_s=1)
    first = book.observe(verdict_conditions(verdict("fail"))[0], at(0))
    assert first is not None
    t.body(first, at(0))
    v3 = verdict("fail", 30).model_copy(update={"canary_version": "v3"})
    second = book.observe(verdict_conditions(v3)[0], at(30))  # the next rollout fails too: now about v3
    assert second is not None and second.fingerprint == first.fingerprint
    old, new = t.body(second, at(30))
    assert old["labels"]["model_version"] == "v2" and old["endsAt"] == "2026-11-22T12:00:30Z"
    assert new["labels"]["model_version"] == "v3" and new["endsAt"] == "2026-11-22T12:04:30Z"
    (event,) = t.body(controller_alert(40), at(40))  # the controller's: an event, no condition clears it
    assert event["endsAt"] == "2026-11-22T13:00:40Z" and len(t.repost_body(at(60))) == 1


# ------------------------------------------------------------------------------------ delivery (real HTTP)
class Receiver:
    """A real HTTP server on 127.0.0.1 that answers with the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(await request.json())
        return web.Response(status=status, text="ok" if status == 200 else "no")


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(receiver: Receiver) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}/hook"
        runners.append(runner)
        return receiver

    yield start
    for r in runners:
        await r.cleanup()


def notifier(targets: list[Target], **kw: Any) -> Notifier:
    cfg = AlertSettings(webhook_attempts=4, webhook_backoff_max_s=0.05, webhook_timeout_s=2, **kw)
    return Notifier(targets, cfg, registry=CollectorRegistry(), backoff_base_s=0.01)


def sample(n: Notifier, target: str, outcome: str) -> float:
    return n.sent.labels(target=target, outcome=outcome)._value.get()


@session_loop
async def test_webhook_retries_until_delivered(serve: Any) -> None:
    am = await serve(Receiver([503, 500]))
    slack = await serve(Receiver())
    n = notifier(
        [Target("webhook", am.url, lambda a: alertmanager_payload([a])), Target("slack", slack.url, slack_payload)]
    )
    alert = AlertBook(renotify_s=60).observe(verdict_conditions(verdict("fail"))[0], at(0))
    assert alert is not None
    n.enqueue(alert)
    await n.drain()
    assert (
        am.attempts == 3 and len(am.bodies) == 1 and am.bodies[0]["alerts"][0]["labels"]["alertname"] == "canary_failed"
    )
    assert slack.attempts == 1 and "canary_failed on d" in slack.bodies[0]["text"]
    assert sample(n, "webhook", "delivered") == 1 and sample(n, "slack", "delivered") == 1
    await n.stop()


@session_loop
async def test_webhook_gives_up_on_refusal_and_on_a_dead_receiver(serve: Any) -> None:
    refusing = await serve(Receiver([400]))
    n = notifier(
        [
            Target("webhook", refusing.url, lambda a: alertmanager_payload([a])),
            Target("slack", "http://127.0.0.1:9/nothing-listens", slack_payload),
        ]
    )
    alert = AlertBook(renotify_s=60).observe(cond(True), at(0))
    assert alert is not None
    n.enqueue(alert)
    await n.drain()
    assert refusing.attempts == 1  # a 400 is not retried
    assert sample(n, "webhook", "failed") == 1 and sample(n, "slack", "failed") == 1
    await n.stop()


@session_loop
async def test_full_queue_drops_the_oldest_without_blocking(serve: Any) -> None:
    rec = await serve(Receiver())
    n = notifier([Target("slack", rec.url, slack_payload)], queue_size=2)
    book = AlertBook(renotify_s=60)
    alerts = [book.observe(cond(True, f"r{i}"), at(i)) for i in range(3)]
    for a in alerts:
        assert a is not None
        n.enqueue(a)  # the sender task has not run yet: the third one finds the queue full
    await n.drain()
    assert [b["text"].split(" on ")[0].split()[-1] for b in rec.bodies] == ["r1", "r2"]
    assert sample(n, "slack", "dropped") == 1
    await n.stop()


@session_loop
async def test_alerter_publishes_and_notifies_once_per_episode(serve: Any) -> None:
    rec = await serve(Receiver())
    s = Settings(alerts=AlertSettings(webhook=rec.url, ttft_p95_ms=300, renotify_s=600, min_window_count=10))
    published: list[Alert] = []
    n = Notifier(targets_from(s), s.alerts, registry=CollectorRegistry())
    alerter = Alerter(s, published.append, n)
    await alerter.on_window(window(0, ttft_p95=450), at(0))
    await alerter.on_window(window(60, ttft_p95=470), at(60))  # still breaching: deduplicated
    await alerter.on_verdict(verdict("fail"), at(61))
    assert await alerter.on_alert(controller_alert(62), at(62)) is False  # same page as the verdict's
    assert await alerter.on_alert(published[0], at(63)) is False  # its own alert read back
    await alerter.on_window(window(120, ttft_p95=200), at(120))
    await n.drain()
    assert [(a.rule, a.status) for a in published] == [
        ("ttft_p95_high", "firing"),
        ("canary_failed", "firing"),
        ("ttft_p95_high", "resolved"),
    ]
    assert [(b["alerts"][0]["labels"]["alertname"], b["status"]) for b in rec.bodies] == [
        ("ttft_p95_high", "firing"),
        ("canary_failed", "firing"),
        ("ttft_p95_high", "resolved"),
    ]
    await n.stop()


def test_every_query_annotation_is_a_command_that_runs() -> None:
    """The `query` annotation names a real ready query (or command) and only parameters that query declares."""
    import shlex

    import click

    from llmwatch.cli import cli
    from llmwatch.db.ready import ready_queries
    from llmwatch.streams.alerting import QUERIES

    queries = ready_queries()
    for rule, template in QUERIES.items():
        words = shlex.split(template.format(deployment="d", verdict_id="v"))
        assert words[0] == "llmwatch", rule
        if words[1:3] == ["db", "ready"]:
            query = queries[words[3]]
            params = dict(w.split("=", 1) for w in words[4:] if w != "--param")
            query.parameters(overrides=params)  # raises for a parameter the query does not declare
        else:
            cmd: click.Command = cli
            for word in words[1:]:
                if not isinstance(cmd, click.Group):
                    break
                sub = cmd.get_command(click.Context(cmd), word)
                assert sub is not None, (rule, word)
                cmd = sub
