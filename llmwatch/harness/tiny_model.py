"""A tiny causal LM built locally (no hub): tests, the demo and the CPU engines need a real model offline.

A byte-level BPE tokenizer is trained with `tokenizers` on a few paragraphs, and a 2-layer Llama with random
weights is saved next to it. head_dim = 128 / 4 = 32, the smallest vLLM's CPU attention backend accepts.
Building is deterministic for a seed and skipped when the folder already holds the same build.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Written last, so a half-built folder is never taken for a finished one.
MARKER = "llmwatch-tiny-model.json"

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

SPECIAL_TOKENS = ["<s>", "</s>", "<unk>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]

CORPUS = [
    "Inference workers publish every prompt and response with its latencies to a Kafka topic. "
    "Stream agents score each event for toxicity, personal data, prompt injection and grounding.",
    "A canary serves a small share of the traffic next to the baseline. The judge compares their "
    "latency quantiles, error rates and quality scores, and the controller moves the weights step by step.",
    "Time to first token is how long a user waits before the answer starts. Time per output token is "
    "how fast the rest of the answer arrives. Both are measured for every request, streamed or not.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
    "Analysts query the warehouse for drift in prompts, for regressions after a release, and for the "
    "share of answers that leaked an email address or a phone number such as 555-0100.",
    "Hello! How can I help you today? Please summarise the document, answer the question, "
    "and cite the passage you relied on. Thank you, that was helpful.",
]


def _config_dict(vocab_size: int, seed: int) -> dict[str, int]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 1024,
        "seed": seed,
    }


def is_built(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def build_tiny_model(path: Path | str, *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Build (or reuse) the tiny model in `path`; returns the folder, loadable by transformers and vLLM."""
    path = Path(path)
    wanted = _config_dict(vocab_size, seed)
    marker = path / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return path

    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[4:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=wanted["hidden_size"],
        intermediate_size=wanted["intermediate_size"],
        num_hidden_layers=wanted["num_hidden_layers"],
        num_attention_heads=wanted["num_attention_heads"],
        num_key_value_heads=wanted["num_key_value_heads"],
        max_position_embeddings=wanted["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    marker.write_text(json.dumps(wanted))
    return path
