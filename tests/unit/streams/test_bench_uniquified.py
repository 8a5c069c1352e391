"""`llmwatch bench pipeline` makes every event's sentences its own without making them longer than need be."""

from __future__ import annotations

import pytest

from llmwatch.bench.pipeline import _events, event_tag
from llmwatch.evaluators.embeddings import MAX_TOKENS, default_model_path
from llmwatch.evaluators.injection import system_chars

tokenizers = pytest.importorskip("tokenizers")


def _tokenizer() -> object:
    tok = tokenizers.Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    return tok


def test_tags_are_two_wordpieces_and_differ_between_events() -> None:
    tok = _tokenizer()
    tags = [event_tag(f"event-{i}") for i in range(5000)]
    # 18,634 words, ~3.5·10⁸ pairs: 5,000 events expect 0.04 colliding pairs (fixed ids: never flaky)
    assert len(set(tags)) == len(tags)
    assert event_tag("event-7") == tags[7]  # a rerun tags the same event the same way
    for tag in tags[:200]:
        assert len(tok.encode(tag, add_special_tokens=False).ids) == 2, tag


def test_every_user_sentence_is_tagged_and_the_operator_lines_are_not() -> None:
    events = _events(60, seed=3, now_ts=False)
    for e in events:
        tag = event_tag(e.event_id)
        head = system_chars(e)
        assert tag not in e.prompt[:head]  # the system prompt is shared by every event, as in production
        assert tag in e.prompt[head:] and tag in e.response
        for sentence in e.response.split(". "):
            assert tag in sentence, sentence
