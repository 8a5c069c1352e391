"""presidio, imported without the machine-learning stacks it loads and llmwatch never uses.

`import presidio_analyzer` imports its Hugging Face NLP engine, hence `transformers` and `torch`, even when only
pattern recognizers run (as here: our models run on ONNX Runtime, evaluators/embeddings.py). That was 10-16 s of a
cold `llmwatch score` start on this 2-core machine, against ~1.5 s without them. presidio guards those imports
(`try: from transformers import … except ImportError`, thinc likewise for torch), so they are hidden from it while
it imports (`sys.modules[name] = None` makes `import name` raise ImportError) and restored at once: a later
`import torch` in the same process (detoxify's backend) works as usual. Nothing is hidden that is already
imported. Import this module before any presidio module (the modules that use presidio do, first).
"""

from __future__ import annotations

import importlib
import sys

#: optional dependencies of presidio_analyzer's NLP engines that llmwatch's pattern-only use never needs
HIDDEN = ("transformers", "torch")


def import_presidio() -> None:
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        importlib.import_module("presidio_analyzer")
        importlib.import_module("presidio_anonymizer")
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


import_presidio()
