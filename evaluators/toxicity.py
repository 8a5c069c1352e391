"""Toxicity of the prompt and of the response, each a calibrated probability in [0, 1].

Backends, picked by `settings.eval.toxicity_backend` (auto: detoxify when its files are configured, else minilm):

- `detoxify`: the detoxify model from a local checkpoint + a local tokenizer/config folder, loaded through
  detoxify's own model builder (its default downloads from GitHub and the HF hub; we never do). The score is
  the max over detoxify's labels (toxicity, threat, insult, identity attack, …).
- `profanity+minilm-clf` (offline default): one logistic regression over the all-MiniLM-L6-v2 embedding and
  alt-profanity-check's logit, trained on the third-party set `data/sets/toxicity` (Perspective-scored toxic
  texts, ToxiGen, news, refusals and safe answers on sensitive topics, neutral mentions of identity groups; see
  its DATASHEET.md) plus the small authored supplement `data/toxicity_train.jsonl`. Profanity alone scores a
  threat without swear words ~0.5; the embedding part reads meaning (dehumanising statements, threats,
  harassment) and learns that news, clinical text and refusals about the same topics are not toxic. The logit is
  Platt-calibrated on the validation split and the default threshold keeps ≤ 2 % of benign validation texts
  flagged. Weights: `data/toxicity_weights.json`; retrain with `llmwatch eval train --evaluators toxicity`.
- `profanity`: alt-profanity-check alone, the light path (thousands of items/s) for when embeddings are too slow;
  its score is calibrated on the same validation split (it stays a profanity detector).

Texts are scored sentence by sentence (at most 128 chunks per text) and a text scores its worst chunk, so one
abusive sentence is not diluted by a long polite answer. Empty texts score None (nothing to judge).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from llmwatch.evaluators.base import Evaluator, Sample, register, weights_digest
from llmwatch.evaluators.calibration import Platt

log = logging.getLogger(__name__)

TRAIN_FILE = "data/toxicity_train.jsonl"
WEIGHTS_FILE = "data/toxicity_weights.json"
#: alt-profanity-check's logit is scaled to the embedding's range so one L2 penalty treats both fairly.
PROFANITY_SCALE = 0.05
CHUNK_WORDS = 48
MIN_WORDS = 4
MAX_CHUNKS = 128
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _data_path(name: str) -> Path:
    return Path(str(files("llmwatch.evaluators") / name))


def chunk_text(text: str, words: int = CHUNK_WORDS, max_chunks: int = MAX_CHUNKS) -> list[str]:
    """Sentences (tiny ones glued to the previous, long ones cut every `words` words), merged evenly when a
    text has more than `max_chunks`. Sentence level because mean-pooled embeddings dilute: one threat between
    two polite sentences drops from 0.94 to 0.2 when embedded whole. Same tokens in total, so same cost."""
    pieces: list[str] = []
    short_head = ""  # a tiny first sentence ("Sure.") waits for the next one
    for sentence in _SENTENCE.split(text.strip()):
        tokens = sentence.split()
        for i in range(0, len(tokens), words):
            piece = " ".join(tokens[i : i + words])
            if pieces and len(tokens[i : i + words]) < MIN_WORDS:
                pieces[-1] += " " + piece
            elif not pieces and len((short_head + " " + piece).split()) < MIN_WORDS:
                short_head = (short_head + " " + piece).strip()
            else:
                pieces.append((short_head + " " + piece).strip())
                short_head = ""
    if short_head:
        pieces.append(short_head)
    if len(pieces) > max_chunks:
        group = math.ceil(len(pieces) / max_chunks)
        pieces = [" ".join(pieces[i : i + group]) for i in range(0, len(pieces), group)]
    return pieces


class ProfanityModel:
    """alt-profanity-check: a ~1 MB linear model over word tf-idf; profanity, not toxicity.

    Its model is five sigmoid-calibrated LinearSVCs (sklearn CalibratedClassifierCV). We evaluate the same
    fitted weights as one (n, 5) sparse product instead of calling `predict_proba`, whose per-call input
    validation costs several times the arithmetic at our batch sizes (measured: ~2x on the light suite).
    The fast path is checked against the library on probe texts at load and is not used if they differ.
    """

    PROBES = ("you are a wonderful person", "shut up you stupid idiot", "what the hell is this shit", "")

    def __init__(self) -> None:
        from profanity_check import profanity_check as pc

        self._library = pc.predict_prob
        self._vectorizer = pc.vectorizer
        self._weights: tuple[Any, np.ndarray, np.ndarray, np.ndarray] | None = None
        try:
            svcs = [c.estimator for c in pc.model.calibrated_classifiers_]
            sigmoids = [c.calibrators[0] for c in pc.model.calibrated_classifiers_]
            self._weights = (
                np.vstack([m.coef_.ravel() for m in svcs]).T,
                np.asarray([float(np.ravel(m.intercept_)[0]) for m in svcs]),
                np.asarray([s.a_ for s in sigmoids], dtype=np.float64),
                np.asarray([s.b_ for s in sigmoids], dtype=np.float64),
            )
            if not np.allclose(self._fast(list(self.PROBES)), self._slow(list(self.PROBES)), atol=1e-9):
                raise ValueError("fast path disagrees with predict_proba")
        except Exception as e:  # another model layout: the library's own call is always right
            log.warning("alt-profanity-check: using predict_proba (%s)", e)
            self._weights = None

    def _slow(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._library(texts), dtype=np.float64)

    def _fast(self, texts: list[str]) -> np.ndarray:
        assert self._weights is not None
        coef, intercept, a, b = self._weights
        decision = np.asarray(self._vectorizer.transform(texts) @ coef) + intercept
        return (1.0 / (1.0 + np.exp(a * decision + b))).mean(axis=1)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self._fast(list(texts)) if self._weights is not None else self._slow(list(texts))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class ToxicityEvaluator(Evaluator):
    """Shared batching: chunk every prompt/response, score unique chunks once, keep each text's worst chunk."""

    id = "toxicity"
    version = 2
    outputs = ("toxicity_prompt", "toxicity_response")

    def score_chunks(self, chunks: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def score_texts(self, texts: Sequence[str]) -> list[float | None]:
        per_text = [chunk_text(t or "") for t in texts]
        unique = list(dict.fromkeys(c for cs in per_text for c in cs))
        scores = dict(zip(unique, self.score_chunks(unique).tolist(), strict=True)) if unique else {}
        return [max(scores[c] for c in cs) if cs else None for cs in per_text]

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        n = len(items)
        scores = self.score_texts([it.prompt for it in items] + [it.response for it in items])
        return [{"toxicity_prompt": scores[i], "toxicity_response": scores[n + i]} for i in range(n)]


class ProfanityToxicity(ToxicityEvaluator):
    """The light path: alt-profanity-check only (misses threats and slurs-free abuse; says so in its name)."""

    def __init__(self, profanity: ProfanityModel | None = None, head: LinearHead | None = None) -> None:
        self.profanity = profanity or ProfanityModel()
        head = head or LinearHead.load()
        meta = head.meta
        self.backend = f"profanity+weights-{head.digest}"  # its calibration is in the weights file
        self.platt = Platt.from_json(meta.get("calibration", {}).get("profanity", {"a": 1.0, "b": 0.0}))

    def score_chunks(self, chunks: Sequence[str]) -> np.ndarray:
        return self.platt(_logit(self.profanity.predict(chunks)))


class LinearHead:
    """Logistic regression over [embedding, scaled profanity logit], read from the shipped JSON weights."""

    def __init__(self, coef: np.ndarray, intercept: float, meta: dict[str, Any], digest: str = "unknown") -> None:
        self.coef = coef
        self.intercept = intercept
        self.meta = meta
        self.digest = digest  # of the weights file (`weights_digest`), part of the evaluator's name
        self.platt = Platt.from_json(meta.get("calibration", {}).get("minilm", {"a": 1.0, "b": 0.0}))

    @classmethod
    def load(cls, path: Path | None = None) -> LinearHead:
        path = path or _data_path(WEIGHTS_FILE)
        meta = json.loads(path.read_text())
        return cls(np.asarray(meta["coef"], dtype=np.float32), float(meta["intercept"]), meta, weights_digest(path))

    def logits(self, embeddings: np.ndarray, profanity: np.ndarray) -> np.ndarray:
        z = embeddings @ self.coef[:-1] + self.coef[-1] * PROFANITY_SCALE * _logit(profanity) + self.intercept
        return z.astype(np.float64)

    def predict(self, embeddings: np.ndarray, profanity: np.ndarray) -> np.ndarray:
        """Calibrated probability (Platt on the validation split)."""
        return self.platt(self.logits(embeddings, profanity))

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))


def features(embeddings: np.ndarray, profanity: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings, (PROFANITY_SCALE * _logit(profanity))[:, None]]).astype(np.float64)


class MiniLMToxicity(ToxicityEvaluator):
    """Offline default: profanity model + logistic regression on MiniLM sentence embeddings."""

    uses_model = True

    def __init__(self, embedder: Any, head: LinearHead | None = None, profanity: ProfanityModel | None = None) -> None:
        self.embedder = embedder
        self.head = head or LinearHead.load()
        self.profanity = profanity or ProfanityModel()
        self.backend = f"profanity+minilm-clf-{embedder.backend}+weights-{self.head.digest}"
        trained_on = self.head.meta.get("embedder", {}).get("backend")
        if trained_on and trained_on != embedder.backend:
            log.info("toxicity head trained on %s vectors, running on %s (cosine ≥ 0.99)", trained_on, embedder.backend)

    def score_chunks(self, chunks: Sequence[str]) -> np.ndarray:
        return self.head.predict(self.embedder.encode(chunks), self.profanity.predict(chunks))


class DetoxifyToxicity(ToxicityEvaluator):
    """detoxify from local files only: checkpoint (.ckpt with `config` + `state_dict`) and tokenizer/config dir."""

    backend = "detoxify"
    uses_model = True

    def __init__(self, checkpoint: Path, config_dir: Path, batch_size: int = 32) -> None:
        self.model, self.tokenizer, self.class_names = load_detoxify(checkpoint, config_dir)
        self.batch_size = batch_size
        limits = [self.tokenizer.model_max_length, getattr(self.model.config, "max_position_embeddings", 512), 512]
        self.max_length = int(min(limits))
        self.backend = f"detoxify-{self.model.config.model_type}"

    def score_chunks(self, chunks: Sequence[str]) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for i in range(0, len(chunks), self.batch_size):
                enc = self.tokenizer(
                    list(chunks[i : i + self.batch_size]),
                    return_tensors="pt",
                    truncation=True,
                    padding=True,
                    max_length=self.max_length,
                )
                probs = torch.sigmoid(self.model(**enc)[0]).numpy()
                out.append(probs.max(axis=1))
        return np.concatenate(out) if out else np.zeros(0)


_DETOXIFY_NAMES = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}


def load_detoxify(checkpoint: Path, config_dir: Path) -> tuple[Any, Any, list[str]]:
    """Build detoxify's model with its own `get_model_and_tokenizer`, pointing every lookup at local files.

    detoxify resolves the architecture config by the hub name in the checkpoint (`model_type`, e.g.
    bert-base-uncased) even when given a local config path; we substitute the local folder for that name.
    The checkpoint is read with `weights_only=True` (tensors and plain containers only, no pickled code).
    """
    import torch
    from detoxify.detoxify import get_model_and_tokenizer

    loaded = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"{checkpoint} is not a detoxify checkpoint (needs 'config' and 'state_dict')")
    arch = dict(loaded["config"]["arch"]["args"])
    arch["model_type"] = str(config_dir)
    model, tokenizer = get_model_and_tokenizer(
        **arch, state_dict=loaded["state_dict"], huggingface_config_path=str(config_dir)
    )
    classes = [_DETOXIFY_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    return model.eval(), tokenizer, classes


@register("toxicity")
def build(settings: Any) -> Evaluator:
    """The configured backend; a configured-but-unloadable detoxify falls back to minilm with a warning."""
    ev = settings.eval
    choice = getattr(ev, "toxicity_backend", "auto")
    if choice == "profanity":
        return ProfanityToxicity()
    if choice in ("auto", "detoxify") and ev.detoxify_checkpoint is not None:
        if ev.detoxify_tokenizer is None:
            log.warning("detoxify_checkpoint is set but detoxify_tokenizer is not: using the offline toxicity model")
        else:
            try:
                return DetoxifyToxicity(Path(ev.detoxify_checkpoint), Path(ev.detoxify_tokenizer))
            except Exception as e:
                log.warning("detoxify unavailable (%s: %s): using the offline toxicity model", type(e).__name__, e)
    elif choice == "detoxify":
        log.warning("toxicity_backend=detoxify but no detoxify_checkpoint is set: using the offline toxicity model")
    from llmwatch.evaluators.embeddings import get_embedder

    return MiniLMToxicity(get_embedder(settings))
