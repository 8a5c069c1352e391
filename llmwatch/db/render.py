"""Query results for people and for tools: a table when it fits the terminal, else one record per block (like
clickhouse-client's `Vertical` format); CSV and TSV with a header line and ClickHouse's `JSON` shape (`meta`,
`data`, `rows`), which name the columns even when no row came back; JSON lines for streaming. The same value
conversion serves the query endpoint."""

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
from rich.markup import escape
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


def _human(value: Any) -> str:
    """A cell as people read it: times as ClickHouse prints them (`2026-12-07 02:03:20.271`, UTC), NULL spelled."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() != dt.timedelta(0):
            return value.isoformat()
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + f".{value.microsecond // 1000:03d}" if value.microsecond else text
    return "NULL" if value is None else _cell(value)


def _objects(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [{c: jsonable(v) for c, v in zip(columns, row, strict=False)} for row in rows]


def to_json(columns: Sequence[str], rows: Sequence[Sequence[Any]], types: Sequence[str] | None = None) -> str:
    """ClickHouse's `JSON` format: `meta` names each column (and its type when known), `data` holds one object per
    row, `rows` counts them; `jq '.data[]'` reads the rows, `.meta[].name` the columns even of an empty result."""
    meta = [{"name": c} | ({"type": types[i]} if types and i < len(types) else {}) for i, c in enumerate(columns)]
    return json.dumps({"meta": meta, "data": _objects(columns, rows), "rows": len(rows)}, indent=2)


def to_jsonl(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """One JSON object per line (ClickHouse's `JSONEachRow`): nothing at all for an empty result."""
    return "".join(json.dumps(obj) + "\n" for obj in _objects(columns, rows))


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """RFC 4180 CSV with a header line (written even when there is no row)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if columns:
        writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def to_tsv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """ClickHouse's `TSVWithNames`: a header line, tab-separated cells, tabs/newlines/backslashes escaped, NULL as
    `\\N` (what `clickhouse-client`, pandas `read_csv(sep="\\t")` and `cut` read back)."""
    lines = ["\t".join(c.translate(_TSV_ESCAPES) for c in columns)] if columns else []
    for row in rows:
        lines.append("\t".join("\\N" if v is None else _cell(v).translate(_TSV_ESCAPES) for v in row))
    return "".join(line + "\n" for line in lines)


def _count(rows: Sequence[Any]) -> str:
    return f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]"


def natural_width(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Characters a table needs to show every cell whole: the widest line of each column, rich's borders."""
    widths = [len(c) for c in columns]
    for row in rows:
        for i, v in enumerate(row[: len(widths)]):
            text = _human(v)
            widths[i] = max(widths[i], max((len(line) for line in text.splitlines()), default=0))
    return sum(widths) + 3 * len(widths) + 1


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*("[dim]NULL[/dim]" if v is None else escape(_human(v)) for v in row))
    if columns:
        console.print(table)
    console.print(_count(rows))


def print_vertical(columns: Sequence[str], rows: Sequence[Sequence[Any]], console: Console | None = None) -> None:
    """One block per row, a column per line (clickhouse-client's `Vertical`): every value whole, however wide."""
    console = console or Console()
    pad = max((len(c) for c in columns), default=0) + 2
    for n, row in enumerate(rows, 1):
        head = f"Row {n}:"
        console.print(f"[bold]{head}[/bold]\n{'─' * len(head)}", highlight=False)
        for c, v in zip(columns, row, strict=False):
            value = "[dim]NULL[/dim]" if v is None else escape(_human(v)).replace("\n", "\n" + " " * pad)
            console.print(f"{escape(c + ':'):{pad}}{value}", highlight=False, soft_wrap=True)
        console.print()
    if not rows and columns:
        console.print(f"[dim]columns: {escape(', '.join(columns))}[/dim]", highlight=False)
    console.print(_count(rows))


def print_auto(columns: Sequence[str], rows: Sequence[Sequence[Any]], console: Console | None = None) -> None:
    """A table when it fits the console's width with every cell whole, else vertical records."""
    console = console or Console()
    if natural_width(columns, rows) <= console.width:
        print_table(columns, rows, console)
    else:
        print_vertical(columns, rows, console)
