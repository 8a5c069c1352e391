"""Gateway security: API keys (constant-time, every key compared), per-client rate limits, and secrets kept out
of /metrics, responses and logs. The real app over httpx's ASGI transport, a simulated engine, no broker."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from llmwatch.errors import ConfigError
from llmwatch.inference import security
from llmwatch.inference.app import DeploymentSpec, Gateway, GatewayConfig, build_gateway, create_app
from llmwatch.inference.engines import EngineSpec
from llmwatch.inference.gateway_metrics import GatewayMetrics
from llmwatch.inference.publisher import EventPublisher
from llmwatch.inference.security import Guard, key_id
from llmwatch.settings import GatewaySettings, Settings
from llmwatch.settings_doc import effective_settings
from llmwatch.sim.engine import SimulatedEngine
from llmwatch.sim.profiles import LogNormal, VersionProfile

session_loop = pytest.mark.asyncio(loop_scope="session")

KEY_A = "sk-test-alpha-7f3c2a9e41d04b5c"
KEY_B = "sk-test-bravo-0e8d6b1a2c3f4e5d"
FAST = VersionProfile(
    ttft_ms=LogNormal(median=0.01),
    tpot_ms=LogNormal(median=0.01),
    output_tokens=LogNormal(median=6.0),
    error_rate=0.0,
    toxic_rate=0.0,
    pii_rate=0.0,
)
CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
COMPLETION = {"model": "demo", "prompt": "hello", "max_tokens": 8}


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@asynccontextmanager
async def _gateway(
    gateway_settings: GatewaySettings,
    settings: Settings | None = None,
    publisher_factory: Callable[[Settings, int], Any] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    settings = (settings or Settings()).model_copy(update={"gateway": gateway_settings})
    config = GatewayConfig(engines=[EngineSpec(kind="simulated")], deployments=[DeploymentSpec(name="demo")])
    gateway = build_gateway(
        settings,
        config,
        engines=[SimulatedEngine({"baseline": FAST}, seed=1, chunk_ms=1000)],
        publish=publisher_factory is not None,
        publisher_factory=publisher_factory,
        watch_weights=False,
    )
    app = create_app(gateway)
    async with gateway.running():
        report = await gateway.wait_ready(0 if publisher_factory else 10)  # Kafka may be unreachable on purpose
        while not report.ready and any(state != "ready" for state in report.engines.values()):
            report = await gateway.wait_ready(0.05)
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, gateway


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    return body["error"]


# --- API keys ------------------------------------------------------------------------------------


@session_loop
async def test_without_keys_the_gateway_is_open() -> None:
    async with _gateway(GatewaySettings()) as (http, gateway):
        assert gateway.guard is None  # nothing on the request path
        assert (await http.post("/v1/completions", json=COMPLETION)).status_code == 200


@session_loop
async def test_missing_and_wrong_keys_are_401_that_say_which() -> None:
    async with _gateway(GatewaySettings(api_keys=[KEY_A, KEY_B])) as (http, _):
        for path, body in (("/v1/chat/completions", CHAT), ("/v1/completions", COMPLETION)):
            missing = await http.post(path, json=body)
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            error = _error(missing)
            assert error["code"] == "missing_api_key" and "Authorization: Bearer" in error["message"]
            wrong = await http.post(path, json=body, headers=_bearer("sk-wrong"))
            assert wrong.status_code == 401 and _error(wrong)["code"] == "invalid_api_key"
            assert "sk-wrong" not in wrong.text
        basic = await http.post("/v1/completions", json=COMPLETION, headers={"authorization": f"Basic {KEY_A}"})
        assert basic.status_code == 401 and "Bearer scheme" in _error(basic)["message"]
        assert (await http.get("/v1/models")).status_code == 401
        # a key that is a prefix or extension of a real one is wrong too
        for near in (KEY_A[:-1], KEY_A + "x", KEY_A.upper()):
            assert (await http.post("/v1/completions", json=COMPLETION, headers=_bearer(near))).status_code == 401
        # the body is not even read: an unauthenticated 10 MB post is refused as unauthorized, not too large
        big = await http.post("/v1/completions", content=b"x" * 10_000_000)
        assert big.status_code == 401


@session_loop
async def test_either_configured_key_opens_v1_streamed_and_not() -> None:
    async with _gateway(GatewaySettings(api_keys=[KEY_A, KEY_B])) as (http, _):
        for key in (KEY_A, KEY_B):
            plain = await http.post("/v1/chat/completions", json=CHAT, headers=_bearer(key))
            assert plain.status_code == 200, plain.text
            assert plain.json()["choices"][0]["message"]["content"]
            streamed = await http.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=_bearer(key))
            assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
            by_header = await http.post("/v1/completions", json=COMPLETION, headers={"x-api-key": key})
            assert by_header.status_code == 200
            scheme_case = await http.get("/v1/models", headers={"authorization": f"bearer  {key} "})
            assert scheme_case.status_code == 200 and scheme_case.json()["data"][0]["id"] == "demo"
        # health, readiness and metrics stay open (restrict /metrics at the network level)
        for path in ("/health", "/ready", "/metrics"):
            assert (await http.get(path)).status_code == 200


@session_loop
async def test_every_key_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    keys = [KEY_A, KEY_B, "sk-test-charlie"]
    async with _gateway(GatewaySettings(api_keys=keys)) as (http, _):
        for presented, status in ((KEY_A, 200), (KEY_B, 200), ("sk-nope", 401)):
            calls.clear()
            response = await http.post("/v1/completions", json=COMPLETION, headers=_bearer(presented))
            assert response.status_code == status
            assert len(calls) == len(keys)  # no early exit on the match, none skipped on a miss
            # fixed-length digests are compared, never the raw strings (whose length would show)
            assert all(len(a) == len(b) == 32 for a, b in calls)
            assert all(presented.encode() not in a + b for a, b in calls)


def test_blank_keys_are_refused_not_skipped() -> None:
    with pytest.raises(ConfigError, match="key #1 is blank"):
        Guard(GatewaySettings(api_keys=[KEY_A, "  "]), GatewayMetrics())


# --- rate limits ---------------------------------------------------------------------------------


@session_loop
async def test_rate_limit_per_key_gives_429_with_retry_after_and_spares_other_keys() -> None:
    limits = GatewaySettings(api_keys=[KEY_A, KEY_B], rate_limit_rps=0.01, rate_limit_burst=3)
    async with _gateway(limits) as (http, _):
        for _ in range(3):
            assert (await http.post("/v1/completions", json=COMPLETION, headers=_bearer(KEY_A))).status_code == 200
        limited = await http.post("/v1/chat/completions", json=CHAT, headers=_bearer(KEY_A))
        assert limited.status_code == 429
        error = _error(limited)
        assert error["code"] == "rate_limit_exceeded" and key_id(KEY_A) in error["message"]
        assert 1 <= int(limited.headers["retry-after"]) <= 100  # a whole token at 0.01/s: at most 100 s away
        assert KEY_A not in limited.text
        assert (await http.post("/v1/completions", json=COMPLETION, headers=_bearer(KEY_B))).status_code == 200
        # rejected keys do not spend a bucket, and 401s come before 429s
        assert (await http.post("/v1/completions", json=COMPLETION, headers=_bearer("sk-x"))).status_code == 401
        metrics = (await http.get("/metrics")).text
        assert f'llmwatch_gateway_denied_total{{key_id="{key_id(KEY_A)}",reason="rate_limited"}} 1.0' in metrics
        assert 'llmwatch_gateway_denied_total{key_id="-",reason="unauthorized"} 1.0' in metrics
        assert f'key_id="{key_id(KEY_B)}"' not in metrics


@session_loop
async def test_without_keys_the_rate_limit_is_per_client_address() -> None:
    limits = GatewaySettings(rate_limit_rps=0.01, rate_limit_burst=1)
    async with _gateway(limits, client=("10.0.0.1", 1234)) as (http, gateway):
        assert (await http.post("/v1/completions", json=COMPLETION)).status_code == 200
        limited = await http.post("/v1/completions", json=COMPLETION)
        assert limited.status_code == 429 and "this client" in _error(limited)["message"]
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(gateway), client=("10.0.0.2", 1234)), base_url="http://gw"
        )
        async with other:
            assert (await other.post("/v1/completions", json=COMPLETION)).status_code == 200


def test_token_bucket_refills_at_the_rate_and_keeps_a_bounded_number_of_clients() -> None:
    now = [0.0]
    guard = Guard(
        GatewaySettings(rate_limit_rps=2.0, rate_limit_burst=2), GatewayMetrics(), clock=lambda: now[0], max_clients=3
    )
    take = guard._take
    assert [take("a"), take("a")] == [0.0, 0.0]
    assert take("a") == pytest.approx(0.5)  # empty: one token is half a second away at 2/s
    now[0] = 0.5
    assert take("a") == 0.0 and take("a") > 0
    now[0] = 100.0  # a long pause refills to the burst, not beyond
    assert [take("a"), take("a")] == [0.0, 0.0] and take("a") > 0
    for name in ("b", "c", "d"):  # a fourth client evicts the least recently seen ("a")
        take(name)
    assert list(guard._buckets) == ["b", "c", "d"]
    assert [take("a"), take("a")] == [0.0, 0.0]  # evicted: starts again with a full burst


# --- secrets -------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuickStopPublisher(EventPublisher):
    """The real publisher (it logs its connection attempts), with a short drain on stop."""

    async def stop(self, drain_timeout: float = 0.2) -> None:
        await super().stop(drain_timeout=drain_timeout)


@session_loop
async def test_secrets_never_reach_metrics_responses_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secrets = {
        "api key A": KEY_A,
        "api key B": KEY_B,
        "upstream key": "upstream-secret-3b9f1c",
        "user id salt": "salt-secret-a81d77",
        "kafka SASL password": "sasl-secret-5e2c0d",
        "clickhouse password": "ch-secret-9c4e12",
        "a wrong key a client sent": "sk-guess-secret-000",
    }
    settings = Settings(
        kafka=f"127.0.0.1:{_closed_port()}",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc-gateway",
        kafka_sasl_password=secrets["kafka SASL password"],
        clickhouse=f"https://reader:{secrets['clickhouse password']}@ch.example:8443/llm",
    )
    limits = GatewaySettings(
        api_keys=[KEY_A, KEY_B],
        rate_limit_rps=0.01,
        rate_limit_burst=4,
        upstream_api_key=secrets["upstream key"],
        user_id_salt=secrets["user id salt"],
        max_body_bytes=4096,
    )

    def publisher(s: Settings, buffer: int) -> EventPublisher:
        return _QuickStopPublisher(s, buffer, request_timeout_ms=1000, max_backoff_s=0.2)

    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with _gateway(limits, settings, publisher) as (http, gateway):
        guess = secrets["a wrong key a client sent"]
        requests = [
            ("POST", "/v1/chat/completions", CHAT, {}),
            ("POST", "/v1/chat/completions", CHAT, _bearer(guess)),
            ("POST", "/v1/completions", COMPLETION, {"x-api-key": guess}),
            ("POST", "/v1/chat/completions", {**CHAT, "user": "alice", "session_id": "s1"}, _bearer(KEY_A)),
            ("POST", "/v1/chat/completions", {**CHAT, "stream": True}, _bearer(KEY_A)),
            ("POST", "/v1/completions", {**COMPLETION, "prompt": "p" * 5000}, _bearer(KEY_A)),  # 413
            ("POST", "/v1/completions", {**COMPLETION, "model": "nope"}, _bearer(KEY_A)),  # 404, and limited next
            ("POST", "/v1/completions", COMPLETION, _bearer(KEY_A)),  # 429
            ("POST", "/v1/completions", {**COMPLETION, "temperature": 9}, _bearer(KEY_B)),  # 400
            ("POST", "/v1/completions", {**COMPLETION, "hints": {"scenario": "nope"}}, _bearer(KEY_B)),  # engine 400
            ("GET", "/v1/models", None, _bearer(KEY_B)),
            ("GET", "/ready", None, {}),
        ]
        statuses = []
        for method, path, body, headers in requests:
            response = await http.request(method, path, json=body, headers=headers)
            statuses.append(response.status_code)
            seen.append(response.text)
            seen.append(json.dumps(dict(response.headers)))
        assert statuses == [401, 401, 401, 200, 200, 413, 404, 429, 400, 400, 200, 503]
        seen.append((await http.get("/metrics")).text)
        seen.append(repr(gateway.settings))
    seen.append(json.dumps(effective_settings(settings.model_copy(update={"gateway": limits})), default=str))
    assert any("Kafka" in r.getMessage() for r in caplog.records)  # the publisher did log its failing connection
    seen.append(caplog.text)
    for record in caplog.records:
        seen.append(record.getMessage())
        seen.append(repr(record.args))
        if record.exc_info:
            seen.append(logging.Formatter().formatException(record.exc_info))
    everything = "\n".join(seen)
    leaked = [name for name, secret in secrets.items() if secret in everything]
    assert leaked == []
    assert key_id(KEY_A) in everything  # keys are named by their short ids
