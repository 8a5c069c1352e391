"""Query results as a rich table, CSV or JSON; the same value conversion serves the query endpoint."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table


def jsonable(value: Any) -> Any:
    """A value JSON can carry without loss of meaning (NaN/inf become null: JSON has no such numbers)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def _cell(value: Any) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def to_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An array of objects, one per row (what jq and pandas.read_json expect)."""
    return json.dumps([{c: jsonable(v) for c, v in zip(columns, row, strict=False)} for row in rows], indent=2)


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if columns:
        writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*("[dim]NULL[/dim]" if v is None else _cell(v).replace("[", r"\[") for v in row))
    if columns:
        console.print(table)
    console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")
