"""Tools and JSON-schema answers through the gateway, end to end with real parts: the official `openai` client → the
gateway's openai engine → vLLM's own OpenAI-compatible server (CPU build) on the tiny model → Kafka → a worker →
ClickHouse. vLLM's structured-output decoding makes a forced tool call and schema-valid JSON whatever the tiny
model's quality, so the assertions hold on it; the tool call must be in the stored event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from llmwatch.harness import GatewayProcess, WorkerProcess, free_port, query_rows, wait_for
from llmwatch.harness.tiny_model import build_tiny_model
from llmwatch.settings import EvaluatorSettings, Settings, WorkerSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Schemas whose every value is bounded (enums, booleans): a random model, constrained, must end them. With free
# strings or free whitespace (the server's `disable_any_whitespace` removes that) it could write until max_tokens.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Oslo", "Paris", "Lima"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ANSWER = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}, "confident": {"type": "boolean"}},
    "required": ["answer", "confident"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI-compatible server on the tiny model. The server refuses any tool_choice but "none" unless a
    tool-call parser is enabled (hermes ships with vLLM); forced calls are then made by structured outputs."""
    pytest.importorskip("vllm", reason="vLLM's CPU build is installed by scripts/install.sh")
    base = tmp_path_factory.mktemp("vllm-server")
    model = build_tiny_model(base / "tiny-model")
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CACHE_ROOT": str(base / "cache"),
        # forced tool calls as a JSON-schema constraint (which honours disable_any_whitespace), not as the parser's
        # structural tag (whose JSON allows free whitespace)
        "VLLM_ENFORCE_STRICT_TOOL_CALLING": "0",
    }
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
        "--enforce-eager", "--max-model-len", "1024", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]  # fmt: skip
    log = (base / "vllm.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"vLLM's server exited:\n{(base / 'vllm.log').read_text()[-3000:]}")
            return httpx.get(f"{url}/v1/models", timeout=2, trust_env=False).status_code == 200

        wait_for(up, 420, "vLLM's OpenAI server to serve the tiny model", interval_s=2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)
        log.close()


@pytest.fixture
def tools_settings(isolated_topics: Settings, tmp_path: Path) -> Settings:
    return isolated_topics.model_copy(
        update={
            "data_dir": tmp_path,
            "clickhouse": f"chdb://{tmp_path / 'clickhouse'}",
            "eval": EvaluatorSettings(enabled=["pii"], redact=True),
            "worker": WorkerSettings(app_id=f"test-tools-{uuid.uuid4().hex[:8]}", sink_within_s=0.3),
        }
    )


def _stored(s: Settings, event_id: str) -> tuple[Any, ...] | None:
    rows = query_rows(
        s,
        "SELECT tool_names, tool_calls, finish_reasons, output_messages, tool_definitions, request_tool_choice,"
        " request_output_type, response, engine FROM inference_events FINAL WHERE event_id = {e:String}",
        {"e": event_id},
    )
    return rows[0] if rows else None


@pytest.mark.timeout(1800)  # vLLM's server takes 1-6 minutes to start on a busy 2-core machine
def test_tool_calls_and_json_schema_through_the_gateway_to_vllm(
    vllm_server: str, tools_settings: Settings, tmp_path: Path
) -> None:
    import openai

    s = tools_settings
    worker = WorkerProcess(s, ["score", "sink"], tmp_path / "worker.log").start()
    gateway = GatewayProcess(
        s, tmp_path / "gateway.log", args=("--engine", "openai", "--upstream", f"{vllm_server}/v1")
    ).start()
    try:
        gateway.wait_ready(180)
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=120)
        assert client.models.retrieve("demo").id == "demo"
        messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
        forced = {"type": "function", "function": {"name": "get_weather"}}

        raw = client.chat.completions.with_raw_response.create(
            model="demo", messages=messages, tools=[WEATHER], tool_choice=forced, max_tokens=60, temperature=0
        )
        answer = raw.parse()
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert call.function.name == "get_weather"
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, WEATHER["function"]["parameters"])  # type: ignore[index]
        tool_event = raw.headers["x-request-id"]

        streamed = client.chat.completions.create(
            model="demo",
            messages=messages,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=80,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: dict[int, dict[str, str]] = {}
        stream_event = ""
        for chunk in streamed:
            stream_event = chunk.id.removeprefix("chatcmpl-")
            for choice in chunk.choices:
                for d in choice.delta.tool_calls or ():
                    piece = pieces.setdefault(d.index, {"name": "", "arguments": ""})
                    if d.function and d.function.name:
                        piece["name"] = d.function.name
                    if d.function and d.function.arguments:
                        piece["arguments"] += d.function.arguments
        assert pieces and pieces[0]["name"] == "get_weather"
        jsonschema.validate(json.loads(pieces[0]["arguments"]), WEATHER["function"]["parameters"])  # type: ignore[index]

        raw = client.chat.completions.with_raw_response.create(
            model="demo",
            messages=[{"role": "user", "content": "Answer in JSON."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": ANSWER, "strict": True},
            },
            max_tokens=60,
            temperature=0,
        )
        content = raw.parse().choices[0].message.content
        jsonschema.validate(json.loads(content or ""), ANSWER)
        json_event = raw.headers["x-request-id"]

        def stored() -> dict[str, tuple[Any, ...]]:
            rows = {e: _stored(s, e) for e in (tool_event, stream_event, json_event)}
            return rows if all(rows.values()) else {}  # type: ignore[return-value]

        rows = wait_for(stored, 240, "the three events in ClickHouse", processes=[worker, gateway])
        names, calls, reasons, output, definitions, choice, output_type, _response, engine = rows[tool_event]
        assert names == ["get_weather"] and engine == "openai"
        assert json.loads(json.loads(calls)[0]["arguments"]) == arguments
        assert json.loads(definitions)[0]["function"]["name"] == "get_weather"
        assert choice == "get_weather" and output_type == "text"
        assert json.loads(output)[0]["parts"][-1]["type"] == "tool_call"
        assert len(reasons) == 1
        assert rows[stream_event][0] == ["get_weather"] and rows[stream_event][5] == "required"
        names, _calls, _reasons, _output, _defs, _choice, output_type, response, _engine = rows[json_event]
        assert names == [] and output_type == "json"
        jsonschema.validate(json.loads(response), ANSWER)  # redaction left the JSON as it was (no PII in it)
    finally:
        gateway.stop()
        worker.stop()
