"""Result rendering: JSON output is valid JSON whatever ClickHouse returned."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address
from uuid import UUID

from rich.console import Console

from llmwatch.db.render import jsonable, natural_width, print_auto, print_table, to_csv, to_json, to_jsonl, to_tsv

ROW = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    date(2026, 1, 2),
    Decimal("1.50"),
    UUID(int=1),
    IPv4Address("10.0.0.1"),
    float("nan"),
    b"\xff\x00",
    {"a": [1, 2]},
    (1, "x"),
    None,
]
COLS = ["ts", "d", "dec", "uuid", "ip", "nan", "raw", "map", "tup", "null"]


def test_json_is_valid_and_lossless_where_json_can_be() -> None:
    out = json.loads(to_json(COLS, [ROW]))["data"]
    assert out == [
        {
            "ts": "2026-01-02T03:04:05+00:00",
            "d": "2026-01-02",
            "dec": "1.50",
            "uuid": "00000000-0000-0000-0000-000000000001",
            "ip": "10.0.0.1",
            "nan": None,
            "raw": "/wA=",
            "map": {"a": [1, 2]},
            "tup": [1, "x"],
            "null": None,
        }
    ]


def test_json_refuses_nan_tokens() -> None:
    text = to_json(["x"], [[float("inf")], [float("-inf")], [1.5]])
    assert "Infinity" not in text
    assert json.loads(text)["data"] == [{"x": None}, {"x": None}, {"x": 1.5}]


def test_csv_has_header_and_json_cells() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(["a", "b"], [[1, {"k": "v"}], [None, "x,y"]]))))
    assert rows == [["a", "b"], ["1", '{"k": "v"}'], ["", "x,y"]]


def test_table_shows_values_and_row_count() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_table(["name", "n"], [["[bold]x", 3], [None, 4]], console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[bold]x" in text and "NULL" in text and "2 rows" in text


def test_jsonable_keeps_plain_values() -> None:
    assert jsonable(3) == 3 and jsonable("s") == "s" and jsonable(True) is True


def test_empty_results_keep_their_header() -> None:
    assert to_csv(["a", "b"], []) == "a,b\n" and to_tsv(["a", "b"], []) == "a\tb\n" and to_jsonl(["a"], []) == ""
    assert json.loads(to_json(["a"], [], ["UInt8"])) == {
        "meta": [{"name": "a", "type": "UInt8"}],
        "data": [],
        "rows": 0,
    }


def test_tsv_escapes_like_clickhouse() -> None:
    assert to_tsv(["t"], [["a\tb\nc\\d"], [None]]) == "t\na\\tb\\nc\\\\d\n\\N\n"


def test_auto_is_a_table_when_it_fits_else_vertical() -> None:
    cols, rows = ["name", "reason"], [["x", "y" * 50]]
    assert natural_width(cols, rows) == 4 + 50 + 3 * 2 + 1
    for width, vertical in ((61, False), (60, True)):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        print_auto(cols, rows, console)
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert ("Row 1:" in text) is vertical and "y" * 50 in text
