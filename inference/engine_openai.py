"""Any OpenAI-compatible upstream (vLLM's server, TGI, llama.cpp, another llmwatch gateway) over HTTP.

Always streams from the upstream, so TTFT is the first content chunk as it arrives here. Each content
chunk counts as one token while streaming (servers send one per token); when the upstream reports usage
at the end of the stream, the final chunk corrects the count to the upstream's own figure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from .engine_base import (
    RESPONSE_FORMAT,
    TOOLS,
    EngineError,
    EngineRequestError,
    EngineUnavailable,
    GenerationRequest,
    TokenChunk,
    ToolCallDelta,
    UpstreamError,
)

if TYPE_CHECKING:
    from .engines import EngineSpec

log = logging.getLogger(__name__)


async def iter_sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` payloads of a Server-Sent Events stream (multi-line data joined, comments skipped)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _error_message(body: bytes) -> str:
    try:
        err = json.loads(body).get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err or body[:500].decode(errors="replace"))
    except (ValueError, AttributeError):
        return body[:500].decode(errors="replace")


class OpenAIEngine:
    """Serves the upstream's model ids as model versions (`models`, or what /v1/models lists).

    Tools, tool_choice, parallel_tool_calls and response_format go to the upstream as the client sent them; the
    upstream's tool-call deltas stream back as they come.
    """

    name = "openai"
    features = frozenset({TOOLS, RESPONSE_FORMAT})

    def __init__(
        self,
        base_url: str,
        *,
        models: Iterable[str] | None = None,
        api_key: SecretStr | str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        max_connections: int = 256,
        ready_timeout_s: float = 2.0,
        ready_ttl_s: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self._models = list(models or [])
        self._api_key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client: httpx.AsyncClient | None = None
        self._ready_timeout_s = ready_timeout_s
        self._ready_ttl_s = ready_ttl_s
        self._checked: tuple[float, str | None] | None = None  # (when, error) of the last upstream check
        self._checking: asyncio.Future[str | None] | None = None

    def versions(self) -> list[str]:
        return list(self._models)

    @property
    def loaded(self) -> bool:
        return self._client is not None and bool(self._models)

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self._timeout, limits=self._limits)
        if not self._models:
            try:
                resp = await client.get("/v1/models")
                resp.raise_for_status()
                self._models = [m["id"] for m in resp.json()["data"]]
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as e:
                await client.aclose()
                raise EngineUnavailable(f"cannot list models of upstream {self.base_url}: {e}") from e
            if not self._models:
                await client.aclose()
                raise EngineUnavailable(f"upstream {self.base_url} lists no models")
        self._client = client
        log.info("openai engine: upstream %s serves %s", self.base_url, self._models)

    async def check(self) -> str | None:
        """Why the upstream cannot serve now (None: it can), for /ready.

        Cached `ready_ttl_s` and shared by concurrent callers, so however often /ready is polled the upstream sees
        at most one request per interval; each check gives up after `ready_timeout_s`.
        """
        checked = self._checked
        if checked is not None and time.monotonic() - checked[0] < self._ready_ttl_s:
            return checked[1]
        if self._checking is None:
            self._checking = asyncio.ensure_future(self._check_upstream())
        # shielded: a /ready caller that hangs up must not cancel the check the others wait on
        return await asyncio.shield(self._checking)

    async def _check_upstream(self) -> str | None:
        try:
            error = await self._probe()
        finally:
            self._checking = None
        before = self._checked[1] if self._checked is not None else None
        self._checked = (time.monotonic(), error)
        if error is not None and error != before:  # once per change, not once per check
            log.warning("openai engine: %s", error)
        elif error is None and before is not None:
            log.info("openai engine: upstream %s answers again", self.base_url)
        return error

    async def _probe(self) -> str | None:
        if self._client is None:
            return "not started"
        try:
            resp = await self._client.get("/v1/models", timeout=self._ready_timeout_s)
        except httpx.HTTPError as e:
            return f"upstream {self.base_url} is unreachable: {type(e).__name__}: {e}".rstrip(": ")
        # A server that answers is up, even without a /v1/models (404); a refused key or a 5xx is not.
        if resp.status_code in {401, 403} or resp.status_code >= 500:
            return f"upstream {self.base_url} answers {resp.status_code}: {_error_message(resp.content)}"
        return None

    async def stop(self) -> None:
        self._checked = None
        if self._checking is not None:
            self._checking.cancel()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": request.model_version,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.messages:
            body["messages"] = [m.openai() for m in request.messages]
            if request.tools:
                body["tools"] = list(request.tools)
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
            if request.response_format is not None:
                body["response_format"] = request.response_format
            return "/v1/chat/completions", body
        body["prompt"] = request.prompt
        return "/v1/completions", body

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        if self._client is None:
            raise EngineUnavailable("engine 'openai' is not started")
        if request.model_version not in self._models:
            raise EngineRequestError(f"upstream does not serve {request.model_version!r} (it serves {self._models})")
        path, body = self._body(request)
        try:
            async with self._client.stream("POST", path, json=body) as resp:
                if resp.status_code >= 400:
                    message = _error_message(await resp.aread())
                    kind = EngineRequestError if resp.status_code in {400, 422} else UpstreamError
                    err = kind(f"upstream {resp.status_code}: {message}")
                    err.upstream_status = resp.status_code  # type: ignore[attr-defined]
                    raise err
                async for chunk in self._chunks(iter_sse_data(resp.aiter_lines())):
                    yield chunk
        except EngineError:
            raise
        except httpx.HTTPError as e:
            raise UpstreamError(f"upstream {self.base_url}: {type(e).__name__}: {e}") from e

    async def _chunks(self, payloads: AsyncIterator[str]) -> AsyncIterator[TokenChunk]:
        counted = 0
        finish: str | None = None
        usage: dict[str, Any] | None = None
        async for data in payloads:
            if data.strip() == "[DONE]":
                break
            try:
                obj = json.loads(data)
            except ValueError as e:
                raise UpstreamError(f"upstream sent a chunk that is not JSON: {data[:200]!r}") from e
            if "error" in obj:
                err = obj["error"]
                message = err.get("message") if isinstance(err, dict) else err
                raise UpstreamError(f"upstream error mid-stream: {message}")
            usage = obj.get("usage") or usage
            for choice in obj.get("choices") or []:
                finish = choice.get("finish_reason") or finish
                text, is_token = _choice_text(choice)
                calls = _tool_call_deltas(choice)
                if is_token or calls:
                    counted += 1
                    yield TokenChunk(text=text, tokens=1, tool_calls=calls)
        final = TokenChunk(text="", tokens=0, finish_reason=finish or "stop")
        if usage:
            final.input_tokens = int(usage.get("prompt_tokens") or 0)
            reported = usage.get("completion_tokens")
            if reported is not None:
                final.tokens = int(reported) - counted
            details = usage.get("prompt_tokens_details") or {}
            if isinstance(details, dict) and details.get("cached_tokens") is not None:
                final.cached_tokens = int(details["cached_tokens"])
            details = usage.get("completion_tokens_details") or {}
            if isinstance(details, dict) and details.get("reasoning_tokens") is not None:
                final.reasoning_tokens = int(details["reasoning_tokens"])
        yield final


def _choice_text(choice: dict[str, Any]) -> tuple[str, bool]:
    """(text, whether the chunk carries a token); a chat role announcement carries none."""
    if "text" in choice:
        text = choice.get("text")
        # a closing chunk that only carries the finish reason is not a token
        return str(text or ""), text is not None and not (text == "" and choice.get("finish_reason"))
    delta = choice.get("delta") or {}
    content = delta.get("content")
    if content is None or (delta.get("role") and content == ""):
        return "", False
    return str(content), True


def _tool_call_deltas(choice: dict[str, Any]) -> tuple[ToolCallDelta, ...]:
    """The tool-call pieces of a streamed chat choice (OpenAI's `delta.tool_calls`)."""
    delta = choice.get("delta") or {}
    calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    if not calls:
        return ()
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        out.append(
            ToolCallDelta(
                index=int(call.get("index", i)),
                id=call.get("id"),
                name=function.get("name"),
                arguments=str(function.get("arguments") or ""),
            )
        )
    return tuple(out)


def from_spec(spec: EngineSpec) -> OpenAIEngine:
    """The registry's factory (`kind = "openai"`)."""
    assert spec.upstream is not None  # EngineSpec requires it for this kind
    return OpenAIEngine(spec.upstream, models=spec.versions or None, **spec.options)
