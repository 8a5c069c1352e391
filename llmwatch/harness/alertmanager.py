"""A real Alertmanager as a child process, and a local receiver for its notifications (tooling, not product).

The binary is the one `gotools` builds from Alertmanager's Go module. `local_config` turns llmwatch's deploy config
(deploy/alertmanager/alertmanager.yml) into one that runs here: every receiver's webhook points at a local
`Receiver` under `/<receiver name>`, and the timings shrink to seconds; routes, grouping and inhibition stay as
shipped, so a test exercises the config operators get.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import threading
from collections.abc import Mapping
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

from llmwatch.local.lifetime import die_with_parent
from llmwatch.schemas import utcnow
from llmwatch.tls import default_tls_context

from .processes import free_port
from .wait import HarnessError, wait_for

#: deploy/alertmanager/alertmanager.yml in a source checkout (the tests and the demo run from one)
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
_NOTIFIER_KEYS = ("webhook_configs", "slack_configs", "pagerduty_configs", "email_configs", "opsgenie_configs")


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it, with the path it came to."""

    def __init__(self) -> None:
        bodies: list[tuple[str, dict[str, Any]]] = []
        lock = threading.Lock()
        self.bodies, self._lock = bodies, lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with lock:
                    bodies.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="alert-receiver", daemon=True)
        self._thread.start()

    def notifications(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [b for p, b in self.bodies if path is None or p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def local_config(
    config: Mapping[str, Any] | None = None,
    *,
    receiver_url: str,
    group_wait: str = "1s",
    group_interval: str = "2s",
    repeat_interval: str = "4s",
) -> dict[str, Any]:
    """`config` (default: the deploy config) with every receiver sending to `receiver_url/<name>` by webhook and
    every route's timings set to the given ones where it sets any."""
    out = copy.deepcopy(dict(config or yaml.safe_load(DEPLOY_CONFIG.read_text())))
    for receiver in out.get("receivers", []):
        had = any(receiver.get(k) for k in _NOTIFIER_KEYS)
        for key in _NOTIFIER_KEYS:
            receiver.pop(key, None)
        if had:
            receiver["webhook_configs"] = [{"url": f"{receiver_url}/{receiver['name']}", "send_resolved": True}]

    def timings(route: dict[str, Any], top: bool) -> None:
        for key, value in (("group_wait", group_wait), ("group_interval", group_interval)):
            if top or key in route:
                route[key] = value
        if top or "repeat_interval" in route:
            route["repeat_interval"] = repeat_interval
        for child in route.get("routes", []):
            timings(child, False)

    timings(out["route"], True)
    return out


class AlertmanagerProcess:
    """`alertmanager` on a free loopback port with its own storage folder; stopped with SIGTERM."""

    name = "alertmanager"

    def __init__(self, binary: Path, config: Mapping[str, Any], workdir: Path) -> None:
        self.binary = binary
        self.config = dict(config)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        cmd = [
            str(self.binary),
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=debug",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
            )
        wait_for(self._ready, timeout_s, "Alertmanager to answer /-/ready", processes=[self], interval_s=0.2)
        return self

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2, verify=default_tls_context()).status_code == 200

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- its v2 API -----------------------------------------------------------------------------------------
    def _get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}/api/v2{path}", params=params, timeout=10, verify=default_tls_context())
        r.raise_for_status()
        return r.json()

    def alerts(self, **filters: Any) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: every alert it holds (active, silenced and inhibited ones too, by default)."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        params.update({k: str(v).lower() for k, v in filters.items()})
        return list(self._get("/alerts", **params))

    def groups(self) -> list[dict[str, Any]]:
        return list(self._get("/alerts/groups"))

    def silences(self) -> list[dict[str, Any]]:
        return list(self._get("/silences"))

    def silence(self, matchers: Mapping[str, str], *, hours: float = 1, comment: str, by: str = "llmwatch") -> str:
        """POST /api/v2/silences for exact label matches; returns the silence id."""
        now = utcnow()
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=hours)).isoformat(),
            "createdBy": by,
            "comment": comment,
        }
        r = httpx.post(f"{self.url}/api/v2/silences", json=body, timeout=10, verify=default_tls_context())
        if r.status_code != 200:
            raise HarnessError(f"Alertmanager refused the silence: HTTP {r.status_code} {r.text}")
        return str(r.json()["silenceID"])
