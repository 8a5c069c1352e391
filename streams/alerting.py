"""Alert rules and their dedup state machine: pure code, no Kafka, no HTTP.

Rules turn inputs into *conditions* (a rule is active or not for a deployment right now); `AlertBook` turns
conditions into *notifications*, deduplicated per (deployment, rule):

    inactive ──active──▶ firing (notify) ──active, renotify_s later──▶ firing (notify again)
        ▲                   │
        └────inactive───────┘ resolved (notify, once)

- `canary_failed`: active while the latest verdict about a deployment's canary is `fail`; the next verdict
  that is not (usually the next rollout's) resolves it.
- `canary_sample_ratio_mismatch`: active while the latest verdict flags a sample-ratio mismatch (the canary's share
  of requests is not its weight: a routing bug, and every comparison of the arms is suspect); the controller holds.
- `rollout_stuck` is raised by the controller (a step undecided past `rollout.max_step_duration_s`; it holds).
- Window thresholds (`ttft_p95_high`, `error_rate_high`, `pii_leak_rate_high`, `injection_success_rate_high`):
  each series (variant × prompt_version) of a deployment's model version is judged on its latest *final*
  window with enough requests; the rule is active for that model version while any of its series breaches, so
  a page names the version (Alertmanager routes and inhibits on it) and resolves when all its series are back.
- Alerts raised elsewhere (the controller's rollback or silence alerts, read back from llm.alerts) are events,
  not conditions: they are passed on unless the same (deployment, rule) was notified within `renotify_s`.

Formats: `postable_alerts` is Alertmanager's v2 API body (`POST /api/v2/alerts`); `alertmanager_payload` the
JSON Alertmanager's own webhook receivers get (version 4), for a receiver without an Alertmanager in front;
`slack_payload` Slack's incoming-webhook text. All three carry the same labels and annotations (`Decor`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmwatch.schemas import Alert, CanaryVerdict, WindowMetrics
from llmwatch.settings import AlertSettings

Severity = Literal["info", "warning", "critical"]
#: labels.source of the alerts this module raises (the alerter skips them when it reads llm.alerts back)
SOURCE = "alerter"
#: Alertmanager's "no end" timestamp for firing alerts
ZERO_TIME = "0001-01-01T00:00:00Z"


#: Labels an Alertmanager route can match on; every other label of an Alert travels as an annotation (labels are
#: an alert's identity in Alertmanager: one that changes while it fires would make a second alert).
ROUTE_LABELS = ("alertname", "severity", "deployment", "model_version", "team")
#: Annotation that names the llmwatch command showing an alert's evidence.
QUERY_ANNOTATION = "query"


def fingerprint(deployment: str, rule: str, model_version: str | None = None) -> str:
    """Dedup key of (deployment, rule[, model_version]); without a version, the hash the controller's alert intents
    use (its alerts are about a deployment)."""
    key = f"{deployment}/{rule}" if model_version is None else f"{deployment}/{rule}/{model_version}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ rules
class WindowRule(BaseModel):
    """`metric` of a final window above `threshold` (on at least `min_count` requests) is a breach."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    metric: str = Field(description="WindowMetrics field, e.g. 'ttft_p95_ms'.")
    threshold: float
    severity: Severity = "warning"
    min_count: int = Field(20, ge=1)
    unit: str = ""

    def breach(self, w: WindowMetrics) -> bool | None:
        """True/False when the window can be judged, None when it can't (too small, metric absent)."""
        value = getattr(w, self.metric, None)
        if w.count < self.min_count or value is None or math.isnan(value):
            return None
        return bool(value > self.threshold)

    def show(self, value: float) -> str:
        return f"{value * 100:.3g}%" if self.unit == "%" else f"{value:.4g}{self.unit}"


def window_rules(
    *,
    ttft_p95_ms: float | None,
    error_rate: float | None,
    pii_leak_rate: float | None,
    injection_success_rate: float | None,
    min_count: int,
) -> list[WindowRule]:
    """The built-in window rules; a threshold of None turns its rule off."""
    table: list[tuple[str, str, float | None, Severity, str]] = [
        ("ttft_p95_high", "ttft_p95_ms", ttft_p95_ms, "warning", " ms"),
        ("error_rate_high", "error_rate", error_rate, "critical", "%"),
        ("pii_leak_rate_high", "pii_leak_rate", pii_leak_rate, "critical", "%"),
        ("injection_success_rate_high", "injection_success_rate", injection_success_rate, "critical", "%"),
    ]
    return [
        WindowRule(name=n, metric=m, threshold=t, severity=sev, min_count=min_count, unit=u)
        for n, m, t, sev, u in table
        if t is not None
    ]


@dataclass(frozen=True)
class Condition:
    """A rule's state for one deployment as of now, with what a notification should say."""

    deployment: str
    rule: str
    active: bool
    severity: Severity = "warning"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    verdict_id: str | None = None
    #: part of the dedup key: a window rule fires per model version; None: one alert per deployment and rule
    model_version: str | None = None


def verdict_conditions(v: CanaryVerdict) -> list[Condition]:
    """`canary_failed` (active on fail, cleared by any other result) and `canary_sample_ratio_mismatch` from a
    verdict. One of each per deployment: the next rollout's verdict clears them; `model_version` names the canary."""
    failing = ", ".join(dict.fromkeys(m.metric for m in v.metrics if m.result == "fail"))
    labels = {
        "model_version": v.canary_version,
        "canary_version": v.canary_version,
        "baseline_version": v.baseline_version,
        "judge": v.judge,
    }
    share = f"{v.observed_share:.2%}" if v.observed_share is not None else "an unknown share"
    weight = f"{v.canary_weight:.0%}" if v.canary_weight is not None else "its weight"
    return [
        Condition(
            deployment=v.deployment,
            rule="canary_failed",
            active=v.result == "fail",
            severity="critical",
            summary=f"canary {v.canary_version} of {v.deployment} failed: {v.reason}",
            description=(
                f"{v.judge} judged {v.canary_version} against {v.baseline_version} on {v.canary_n} canary and "
                f"{v.baseline_n} baseline requests; failing metrics: {failing or 'none'}"
            ),
            labels=labels,
            verdict_id=v.verdict_id,
        ),
        Condition(
            deployment=v.deployment,
            rule="canary_sample_ratio_mismatch",
            active=v.srm_detected and v.result != "fail",
            severity="critical",
            summary=f"canary {v.canary_version} of {v.deployment} gets {share} of requests at weight {weight}: "
            "traffic does not follow the weights; the rollout holds",
            description=f"{v.judge}: {v.reason}",
            labels=labels,
            verdict_id=v.verdict_id,
        ),
    ]


@dataclass
class WindowRuleBook:
    """Latest judged final window per (deployment, rule, model version, series): the memory the window rules need."""

    rules: Sequence[WindowRule]
    #: (deployment, rule, model_version) → series → (window_start, breached, value)
    latest: dict[tuple[str, str, str], dict[str, tuple[datetime, bool, float]]] = field(default_factory=dict)

    def observe(self, w: WindowMetrics) -> list[Condition]:
        """Conditions after this window; early (non-final) and out-of-date windows change nothing."""
        if not w.final:
            return []
        series = f"{w.variant}/{w.prompt_version}"
        out: list[Condition] = []
        for rule in self.rules:
            breached = rule.breach(w)
            if breached is None:
                continue
            book = self.latest.setdefault((w.deployment, rule.name, w.model_version), {})
            seen = book.get(series)
            if seen is not None and w.window_start < seen[0]:
                continue  # a late re-emit of an older window: the newer one decides
            book[series] = (w.window_start, breached, float(getattr(w, rule.metric)))
            out.append(self._condition(w.deployment, w.model_version, rule, book))
        return out

    @staticmethod
    def _condition(
        deployment: str, model_version: str, rule: WindowRule, book: dict[str, tuple[datetime, bool, float]]
    ) -> Condition:
        bad = sorted((s, v) for s, (_, breached, v) in book.items() if breached)
        limit = rule.show(rule.threshold)
        labels = {"model_version": model_version, "metric": rule.metric}
        if not bad:
            summary = f"{rule.metric} of {deployment} {model_version} ≤ {limit}"
            return Condition(
                deployment, rule.name, False, rule.severity, summary, labels=labels, model_version=model_version
            )
        worst = max(bad, key=lambda sv: sv[1])
        return Condition(
            deployment=deployment,
            rule=rule.name,
            active=True,
            severity=rule.severity,
            summary=f"{rule.metric} of {deployment} {model_version} is {rule.show(worst[1])} (> {limit}) on {worst[0]}",
            description="; ".join(f"{model_version}/{s}: {rule.show(v)}" for s, v in bad),
            labels={**labels, "series": f"{model_version}/{worst[0]}"},
            model_version=model_version,
        )


# ------------------------------------------------------------------------------------------------ dedup
@dataclass
class _State:
    firing: bool = False
    started_at: datetime | None = None
    notified_at: datetime | None = None
    external_at: datetime | None = None  # when an alert raised elsewhere was last passed on


@dataclass
class AlertBook:
    """Dedup state per (deployment, rule): which notifications to send, and when."""

    renotify_s: float
    states: dict[tuple[str, str, str | None], _State] = field(default_factory=dict)

    def observe(self, c: Condition, now: datetime) -> Alert | None:
        """The notification this condition calls for, if any (firing, re-notify or resolved)."""
        key = (c.deployment, c.rule, c.model_version)
        st = self.states.setdefault(key, _State())
        if c.active:
            if st.firing and self._recent(st.notified_at, now):
                return None
            if not st.firing:
                st.firing, st.started_at = True, now
                if self._recent(st.external_at, now):  # the same page just went out (from the controller)
                    st.notified_at = st.external_at
                    return None
            st.notified_at = now
            return self._alert(c, "firing", now, st)
        if not st.firing:
            return None
        st.firing, st.notified_at = False, now
        return self._alert(c, "resolved", now, st)

    def observe_external(self, alert: Alert, now: datetime) -> bool:
        """Whether an alert raised elsewhere should be notified: not when the same (deployment, rule) was
        notified within `renotify_s` (the alerter's own canary_failed and the controller's are one page)."""
        st = self.states.setdefault((alert.deployment, alert.rule, None), _State())
        if self._recent(st.notified_at, now) or self._recent(st.external_at, now):
            return False
        st.external_at = now
        return True

    def _recent(self, ts: datetime | None, now: datetime) -> bool:
        return ts is not None and now - ts < timedelta(seconds=self.renotify_s)

    def firing(self) -> list[tuple[str, str, str | None]]:
        return sorted((k for k, st in self.states.items() if st.firing), key=lambda k: (k[0], k[1], k[2] or ""))

    @staticmethod
    def _alert(c: Condition, status: Literal["firing", "resolved"], now: datetime, st: _State) -> Alert:
        started = st.started_at or now
        return Alert(
            ts=now,
            deployment=c.deployment,
            rule=c.rule,
            severity=c.severity,
            status=status,
            fingerprint=fingerprint(c.deployment, c.rule, c.model_version),
            summary=c.summary if status == "firing" else f"resolved: {c.summary}",
            description=c.description,
            labels={**c.labels, "source": SOURCE},
            verdict_id=c.verdict_id,
            starts_at=started,
            ends_at=now if status == "resolved" else None,
        )


# ----------------------------------------------------------------------------------------------- formats
def _rfc3339(ts: datetime | None) -> str:
    return ZERO_TIME if ts is None else ts.isoformat().replace("+00:00", "Z")


_RECENT = "llmwatch db ready canary_vs_baseline --param deployment={deployment} --param hours=1"
#: The llmwatch command that shows an alert's evidence, by rule ({deployment}, {verdict_id} filled in).
QUERIES = {
    "canary_failed": "llmwatch db ready canary_metric_results --param verdict_id={verdict_id}",
    "canary_verdicts_stale": "llmwatch rollout status {deployment}",
    "canary_verdicts_missing": "llmwatch db ready weight_history --param deployment={deployment}",
    "ttft_p95_high": _RECENT,
    "error_rate_high": _RECENT,
    "pii_leak_rate_high": "llmwatch db ready pii_leak_rate_by_model_version --param deployment={deployment}",
    "injection_success_rate_high": _RECENT,
}


@dataclass(frozen=True)
class Decor:
    """What delivery adds to every alert: its team (for routing) and where its runbook is."""

    runbook_url: str = "docs/operators.md"
    teams: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: AlertSettings) -> Decor:
        return cls(runbook_url=cfg.runbook_url, teams=dict(cfg.teams))

    def team(self, deployment: str) -> str | None:
        return self.teams.get(deployment, self.teams.get("*"))


def labels_and_annotations(a: Alert, decor: Decor | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Alertmanager's labels (ROUTE_LABELS only: stable for an alert's life) and annotations (summary,
    description, runbook_url, verdict_id, query, and the alert's other labels) of an alert."""
    decor = decor or Decor()
    labels = {"alertname": a.rule, "severity": a.severity, "deployment": a.deployment}
    if a.labels.get("model_version"):
        labels["model_version"] = a.labels["model_version"]
    team = a.labels.get("team") or decor.team(a.deployment)
    if team:
        labels["team"] = team
    annotations = {"summary": a.summary}
    if a.description:
        annotations["description"] = a.description
    annotations["runbook_url"] = f"{decor.runbook_url}#{a.rule}"
    if a.verdict_id:
        annotations["verdict_id"] = a.verdict_id
    query = QUERIES.get(a.rule)
    if query and (a.verdict_id or "{verdict_id}" not in query):
        annotations[QUERY_ANNOTATION] = query.format(deployment=a.deployment, verdict_id=a.verdict_id)
    for k, v in a.labels.items():
        if k not in labels and k not in ROUTE_LABELS:
            annotations.setdefault(k, v)
    return labels, annotations


def postable_alert(a: Alert, ends_at: datetime | None, decor: Decor | None = None) -> dict[str, Any]:
    """One alert of Alertmanager's v2 API (`postableAlert`): labels, annotations, startsAt and endsAt. A firing alert
    is sent with an `endsAt` in the future that later posts push on; a resolved one with the time it cleared."""
    labels, annotations = labels_and_annotations(a, decor)
    body: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": _rfc3339(a.starts_at)}
    if ends_at is not None:
        body["endsAt"] = _rfc3339(ends_at)
    return body


def alertmanager_alert(a: Alert, generator_url: str = "", decor: Decor | None = None) -> dict[str, Any]:
    labels, annotations = labels_and_annotations(a, decor)
    return {
        "status": a.status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(a.starts_at),
        "endsAt": _rfc3339(a.ends_at),
        "generatorURL": generator_url,
        "fingerprint": a.fingerprint,
    }


def alertmanager_payload(
    alerts: Iterable[Alert],
    receiver: str = "llmwatch",
    external_url: str = "",
    generator_url: str = "",
    decor: Decor | None = None,
) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for alerts of one group (one deployment and rule)."""
    items = [alertmanager_alert(a, generator_url, decor) for a in alerts]
    if not items:
        raise ValueError("an Alertmanager notification needs at least one alert")
    common_labels = dict(items[0]["labels"])
    for it in items[1:]:
        common_labels = {k: v for k, v in common_labels.items() if it["labels"].get(k) == v}
    common_ann = dict(items[0]["annotations"])
    for it in items[1:]:
        common_ann = {k: v for k, v in common_ann.items() if it["annotations"].get(k) == v}
    group_labels = {k: common_labels[k] for k in ("alertname", "deployment") if k in common_labels}
    return {
        "version": "4",
        "groupKey": "{}:{" + ",".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(it["status"] == "firing" for it in items) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_ann,
        "externalURL": external_url,
        "alerts": items,
    }


_ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def slack_text(a: Alert) -> str:
    if a.status == "resolved":
        head = f":white_check_mark: *RESOLVED* {a.rule} on {a.deployment}"
    else:
        head = f"{_ICONS[a.severity]} *{a.severity.upper()}* {a.rule} on {a.deployment}"
    lines = [head, a.summary]
    if a.description:
        lines.append(a.description)
    if a.verdict_id:
        lines.append(f"verdict {a.verdict_id}")
    return "\n".join(lines)


def slack_payload(a: Alert) -> dict[str, Any]:
    """Slack incoming-webhook body (plain `text`, which every Slack-compatible receiver reads)."""
    return {"text": slack_text(a)}
