"""The Go tools' cache: one folder per tool and version, a cached binary is used as it is, and a missing toolchain
is a clear error (the build itself runs in scripts/test.sh and the `go_tool` fixture)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmwatch.harness import gotools


def test_each_tool_has_a_folder_per_version(tmp_path: Path) -> None:
    assert gotools.tool_path("promtool", tmp_path) == tmp_path / "go-tools" / "promtool-v0.316.0" / "promtool"
    assert gotools.tool_path("amtool", tmp_path).parent.name == "amtool-v0.35.0"
    assert gotools.tool_path("alertmanager", tmp_path).parent.name == "alertmanager-v0.35.0"
    assert gotools.TOOLS["alertmanager"].target == "github.com/prometheus/alertmanager/cmd/alertmanager@v0.35.0"


def test_a_cached_binary_is_used_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = gotools.tool_path("amtool", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    monkeypatch.setattr(gotools, "_build", lambda *a: pytest.fail("built although cached"))
    said: list[str] = []
    assert gotools.ensure("amtool", tmp_path, say=said.append) == path and said == []


def test_a_build_is_announced_and_lands_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_build(tool: gotools.GoTool, out_dir: Path) -> None:
        (out_dir / tool.name).write_text("binary")

    monkeypatch.setattr(gotools, "_build", fake_build)
    said: list[str] = []
    path = gotools.ensure("promtool", tmp_path, say=said.append)
    assert path.read_text() == "binary" and os.access(path.parent, os.W_OK)
    assert said[0].startswith("building promtool v0.316.0 from its Go module") and "first time only" in said[0]
    assert said[1].startswith("built promtool v0.316.0 in")
    assert [p.name for p in (tmp_path / "go-tools").iterdir() if not p.name.startswith(".promtool.lock")] == [
        "promtool-v0.316.0"
    ]  # no staging folder left behind


def test_a_failed_build_leaves_no_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(tool: gotools.GoTool, out_dir: Path) -> None:
        (out_dir / tool.name).write_text("half")
        raise gotools.GoToolError("compile error")

    monkeypatch.setattr(gotools, "_build", failing)
    with pytest.raises(gotools.GoToolError):
        gotools.ensure("amtool", tmp_path, say=lambda _: None)
    assert not gotools.tool_path("amtool", tmp_path).exists()


def test_no_go_toolchain_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(gotools.os, "access", lambda *a: False)
    with pytest.raises(gotools.GoToolError, match="install Go"):
        gotools.go_binary()
