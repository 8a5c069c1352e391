"""JSON Schema export (`llmwatch schemas export DIR`), for services in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from .registry import PAYLOADS


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one `<Name>.schema.json` per payload; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in PAYLOADS:
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:llmwatch:schema:{model.schema_name}:1"
        path = directory / f"{model.schema_name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
