"""The demo's clients: open-loop chat requests to the gateway carrying the story's current prompt mix and hints."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from .story import DEPLOYMENT, Story


class TrafficDriver:
    """Open-loop requests to the gateway at `rate`/s; each carries the story's current prompt mix and hints."""

    def __init__(
        self, url: str, story: Story, rate: float, clock: Callable[[], float], seed: int = 0, max_tokens: int = 256
    ) -> None:
        from llmwatch.sim.corpus import load_corpus

        self.url = url.rstrip("/") + "/v1/chat/completions"
        self.story = story
        self.rate = rate
        self.clock = clock
        self.corpus = load_corpus()
        self.rng = random.Random(f"demo:{seed}")
        self.seed = seed
        self.max_tokens = max_tokens
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.versions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def body(self, i: int, t: float) -> dict[str, Any]:
        from llmwatch.sim.scenarios import draw_prompt, draw_user

        traffic = self.story.traffic(t)
        user_id, session_id = draw_user(self.rng)
        spec = draw_prompt(traffic.mix, self.rng, self.corpus)
        return {
            "model": DEPLOYMENT,
            "messages": [
                {"role": "system", "content": self.corpus.system_prompt},
                {"role": "user", "content": spec.text},
            ],
            "max_tokens": self.max_tokens,
            "seed": self.seed * 1_000_003 + i,
            "user": user_id,
            "session_id": session_id,
            "context": list(spec.context) if spec.context else None,
            "hints": {**traffic.hints(), "item": spec.item_id},
        }

    async def run(self, stop: asyncio.Event) -> None:
        import aiohttp

        pending: set[asyncio.Task[None]] = set()
        connector = aiohttp.TCPConnector(limit=400)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            start, i = self.clock(), 0
            while not stop.is_set():
                due = start + i / self.rate
                delay = due - self.clock()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    continue
                if len(pending) < 400:  # open loop, but bounded: a stalled gateway must not exhaust the demo
                    task = asyncio.create_task(self._call(session, self.body(i, self.clock())))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                else:
                    self.errors["client: too many in flight"] += 1
                self.sent += 1
                i += 1
            if pending:  # answers already on their way are counted; a stop does not wait on a slow engine
                await asyncio.wait(set(pending), timeout=5)
                for task in pending:
                    task.cancel()

    async def _call(self, session: Any, payload: dict[str, Any]) -> None:
        import aiohttp

        try:
            async with session.post(self.url, json=payload) as response:
                await response.read()
                if response.status == 200:
                    self.ok += 1
                    self.versions[response.headers.get("x-llmwatch-model-version", "?")] += 1
                else:
                    self.failed += 1
                    self.errors[f"http {response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as e:
            self.failed += 1
            self.errors[type(e).__name__] += 1
