"""The demo report (llmwatch/demo/report.py), built from a small fixed dataset in the real ClickHouse engine, opens
in headless Chromium (Debian's `chromium`) without console errors, and every plot is there and shows data: an <img>
whose PNG loaded at the size the report draws, holding the colours of the versions it plots.

Chromium is driven through the DevTools protocol (aiohttp's websocket client): load the page, collect console
errors, exceptions and failed loads, and read what the browser itself decoded (naturalWidth/Height of each image).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmwatch.db.tables import spec_for
from llmwatch.demo.figures import DPI, FIG_SIZE_IN, PLOTS, VERSION_COLORS, Period
from llmwatch.demo.report import build_report, run_ready_queries
from llmwatch.schemas import Alert, CanaryVerdict, MetricVerdict, TrafficWeights, WindowMetrics
from llmwatch.sim.engine import default_demo_engine
from llmwatch.sim.events import scenario_events

pytestmark = [pytest.mark.integration]

T0 = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def weights(seq: int, s: float, w: dict[str, float], baseline: str, canary: str, state: str, **kw: Any) -> Any:
    return TrafficWeights(
        deployment="demo",
        weights=w,
        baseline_version=baseline,
        canary_version=canary,
        state=state,
        seq=seq,
        step_index=0,
        reason=f"{state} at {s:.0f} s",
        updated_at=at(s),
        **kw,
    )


def verdict(vid: str, s: float, canary: str, baseline: str, result: str, failed: str | None = None) -> CanaryVerdict:
    metrics = [
        MetricVerdict(metric=m, result="fail" if m == failed else "pass", canary_n=100, baseline_n=900)
        for m in ("ttft", "pii_leak_rate", "error_rate")
    ]
    return CanaryVerdict(
        verdict_id=vid,
        ts=at(s),
        deployment="demo",
        baseline_version=baseline,
        canary_version=canary,
        judge="msprt@1",
        result=result,
        reason=f"{result}" + (f"; failing: {failed}" if failed else ""),
        metrics=metrics,
        window_start=at(0),
        window_end=at(s),
        canary_n=100,
        baseline_n=900,
    )


def window(s: float, version: str, variant: str, ttft: float, pii: float, drift: float | None) -> WindowMetrics:
    return WindowMetrics(
        window_id=f"demo/{version}/{variant}/default/{int(at(s).timestamp() * 1000)}/10",
        window_start=at(s),
        window_end=at(s + 10),
        size_s=10,
        deployment="demo",
        model_version=version,
        variant=variant,
        count=200,
        error_count=1,
        error_rate=0.005,
        ttft_p95_ms=ttft,
        toxicity_rate=0.01,
        pii_leak_rate=pii,
        injection_rate=0.3 if 60 <= s < 80 else 0.0,
        injection_success_rate=0.0,
        drift_score=drift,
    )


def fixed_dataset() -> dict[type, list[Any]]:
    """A compressed demo: v2 promoted through 10 → 50 → 100 %, then v3 rolled back by a ttft fail verdict."""
    moves = [
        weights(1, 10, {"v1": 0.9, "v2": 0.1}, "v1", "v2", "progressing", command_id="c1"),
        weights(2, 30, {"v1": 0.5, "v2": 0.5}, "v1", "v2", "progressing", verdict_id="p1"),
        weights(3, 50, {"v1": 0.0, "v2": 1.0}, "v1", "v2", "promoted", verdict_id="p2"),
        weights(4, 100, {"v2": 0.9, "v3": 0.1}, "v2", "v3", "progressing", command_id="c2"),
        weights(5, 110, {"v2": 1.0, "v3": 0.0}, "v2", "v3", "rolled_back", verdict_id="f1"),
    ]
    verdicts = [
        verdict("i1", 20, "v2", "v1", "inconclusive"),
        verdict("p1", 30, "v2", "v1", "pass"),
        verdict("p2", 50, "v2", "v1", "pass"),
        verdict("f1", 110, "v3", "v2", "fail", failed="ttft"),
    ]
    windows = []
    for s in range(0, 130, 10):
        windows.append(window(s, "v1" if s < 50 else "v2", "baseline", 200 + s % 20, 0.002, 0.02 + (s < 50) * 0.1))
        if 10 <= s < 50:
            windows.append(window(s, "v2", "canary", 195, 0.0, 0.03))
        if 100 <= s < 120:
            windows.append(window(s, "v3", "canary", 420, 0.08, None))
    alerts = [
        Alert(
            ts=at(111),
            deployment="demo",
            rule="canary_failed",
            severity="critical",
            fingerprint="f",
            summary="canary v3 rolled back",
            verdict_id="f1",
            labels={"source": "controller"},
        ),
        Alert(
            ts=at(115),
            deployment="demo",
            rule="ttft_p95_high",
            severity="warning",
            fingerprint="g",
            summary="p95 TTFT 420 ms",
            labels={"source": "alerter"},
        ),
    ]
    engine = default_demo_engine(5, versions=("v1", "v2"))
    events = list(
        scenario_events("steady", 60, seed=5, start_ts=at(1), rate=0.5, engine=engine, baseline="v1", canary="v2")
    )
    return {
        TrafficWeights: moves,
        CanaryVerdict: verdicts,
        WindowMetrics: windows,
        Alert: alerts,
        type(events[0]): events,
    }


@pytest.fixture
def report_path(ch_client: Any, tmp_path: Path) -> Path:
    for payload_type, payloads in fixed_dataset().items():
        spec_for(payload_type).insert(ch_client, payloads)
    return build_report(
        ch_client,
        tmp_path / "report",
        "demo",
        at(0),
        at(130),
        periods=[Period("injection burst", 60, 80)],
        ready=run_ready_queries(ch_client),
        ok=True,
        summary=["v2 promoted to 100%", "v3 rolled back to 0%"],
    )


# ------------------------------------------------------------------------------------------- chromium
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium; scripts/install.sh does it)")
    return found


class Browser:
    """Headless Chromium with the DevTools protocol on a port it picks (read from DevToolsActivePort)."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise AssertionError(f"chromium did not start its DevTools endpoint: {err[-2000:]}")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


async def load_and_inspect(port: int, url: str) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Navigate to `url`; return (images as the browser decoded them, errors seen, page facts)."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with http.ws_connect(ws_url, max_msg_size=64 * 1024 * 1024) as ws:
            ids = iter(range(1, 1000))
            errors: list[str] = []
            loaded = asyncio.Event()
            replies: dict[int, asyncio.Future[dict[str, Any]]] = {}

            async def reader() -> None:
                async for msg in ws:
                    data = json.loads(msg.data)
                    method = data.get("method")
                    params = data.get("params", {})
                    if "id" in data and data["id"] in replies:
                        replies.pop(data["id"]).set_result(data)
                    elif method == "Page.loadEventFired":
                        loaded.set()
                    elif method == "Runtime.exceptionThrown":
                        errors.append(f"exception: {params['exceptionDetails'].get('text')}")
                    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                        errors.append(f"console.{params['type']}: {params.get('args')}")
                    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                        errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")

            async def call(method: str, **params: Any) -> dict[str, Any]:
                i = next(ids)
                replies[i] = asyncio.get_running_loop().create_future()
                await ws.send_json({"id": i, "method": method, "params": params})
                reply = await asyncio.wait_for(replies[i], 30)
                assert "error" not in reply, reply
                return reply["result"]

            task = asyncio.create_task(reader())
            try:
                for domain in ("Page", "Runtime", "Log"):
                    await call(f"{domain}.enable")
                await call("Page.navigate", url=url)
                await asyncio.wait_for(loaded.wait(), 30)
                script = """JSON.stringify({
                    images: Array.from(document.querySelectorAll('img.plot')).map(i => ({
                        plot: i.dataset.plot, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                        src: i.getAttribute('src')})),
                    title: document.title,
                    summary: (document.getElementById('summary') || {}).textContent || '',
                    tables: document.querySelectorAll('table').length,
                    resources: performance.getEntriesByType('resource').map(r => r.name)})"""
                result = await call("Runtime.evaluate", expression=script, returnByValue=True)
                page = json.loads(result["result"]["value"])
                await asyncio.sleep(0.5)  # late console messages
            finally:
                task.cancel()
    return page.pop("images"), errors, page


def colour_pixels(png: bytes, hex_colour: str, tolerance: int = 12) -> int:
    import matplotlib.image as mpimg

    rgb = (mpimg.imread(io.BytesIO(png), format="png")[..., :3] * 255).astype(int)
    want = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - want).max(axis=-1) <= tolerance).sum())


def test_report_renders_in_headless_chromium_with_every_plot_showing_data(report_path: Path, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "chromium-profile")
    try:
        images, errors, page = asyncio.run(load_and_inspect(browser.port, report_path.as_uri()))
    finally:
        browser.close()
    assert errors == [], errors
    assert page["resources"] == [], "the report must not load anything (PNGs are inlined)"
    assert "story outcomes met" in page["summary"] and page["tables"] >= 5
    by_plot = {img["plot"]: img for img in images}
    assert list(by_plot) == [name for name, _ in PLOTS]
    width, height = round(FIG_SIZE_IN[0] * DPI), round(FIG_SIZE_IN[1] * DPI)
    for name, img in by_plot.items():
        assert img["complete"], name
        expected_h = round(height * 1.6) if name == "rates" else height
        assert (img["width"], img["height"]) == (width, expected_h), (name, img["width"], img["height"])
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png == (report_path.parent / f"{name}.png").read_bytes()  # the linked file is the same picture
    pngs = {name: base64.b64decode(img["src"].split(",", 1)[1]) for name, img in by_plot.items()}
    # the series are drawn: each version's colour covers a line's worth of pixels where that version has data
    for name, versions in {"weights": "v1 v2 v3", "ttft": "v1 v2 v3", "rates": "v1 v2 v3", "drift": "v1 v2"}.items():
        for v in versions.split():
            assert colour_pixels(pngs[name], VERSION_COLORS[v]) > 150, (name, v)
    assert colour_pixels(pngs["drift"], VERSION_COLORS["v3"]) == 0  # v3 has no drift score: nothing drawn
    assert colour_pixels(pngs["verdicts"], "#d62728") > 50 and colour_pixels(pngs["verdicts"], "#2ca02c") > 50
    assert colour_pixels(pngs["alerts"], "#d62728") > 30 and colour_pixels(pngs["alerts"], "#ff7f0e") > 30
    html = report_path.read_text()
    assert "verdict f1 (fail)" in html and "ttft" in html and "weight_history" in html
