"""The OpenAI wire models: what is accepted, what is refused with a named field, and field order."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmwatch.inference.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    ErrorResponse,
)


def _chat(**extra: object) -> dict[str, object]:
    return {"model": "demo", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_chat_request_reads_openai_fields_and_our_extras() -> None:
    req = ChatCompletionRequest.model_validate(
        _chat(
            max_tokens=10,
            max_completion_tokens=20,
            stop="END",
            stream=True,
            stream_options={"include_usage": True},
            user="alice",
            context="one passage",
            prompt_version="v7",
            frequency_penalty=0.5,  # an OpenAI field we do not model: ignored, like other compatible servers
        )
    )
    assert req.requested_max_tokens == 20  # max_completion_tokens supersedes max_tokens
    assert req.stop_list == ("END",)
    assert req.include_usage is True
    assert req.context == ["one passage"]
    assert req.prompt_version == "v7"


def test_content_parts_are_flattened_to_text() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "demo",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        }
    )
    assert req.messages[0].text == "ab"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_chat(n=2), "n"),
        (_chat(temperature=2.5), "temperature"),
        (_chat(top_p=0), "top_p"),
        (_chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (_chat(logprobs=True), "logprobs"),
        (_chat(max_tokens=0), "max_tokens"),
        ({"model": "demo", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (_chat(messages=[{"role": "robot", "content": "x"}]), "messages"),
    ],
)
def test_invalid_chat_requests_name_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(payload)
    assert info.value.errors()[0]["loc"][0] == field


def test_completion_request_takes_one_prompt() -> None:
    assert CompletionRequest.model_validate({"model": "m", "prompt": ["only"]}).prompt_text == "only"
    with pytest.raises(ValidationError, match="exactly one prompt"):
        CompletionRequest.model_validate({"model": "m", "prompt": ["a", "b"]})


def test_response_fields_follow_openai_order_with_extras_last() -> None:
    assert list(ChatCompletionResponse.model_fields) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "llmwatch",
    ]
    assert list(ChatCompletionChunk.model_fields)[:5] == ["id", "object", "created", "model", "choices"]


def test_error_body_is_openai_shaped_and_keeps_the_status_out() -> None:
    err = ErrorResponse.of(404, "no such model", param="model", code="model_not_found")
    body = json.loads(err.model_dump_json())
    assert body == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert err.status_code == 404
    assert ErrorResponse.of(503, "loading").error.type == "server_error"
