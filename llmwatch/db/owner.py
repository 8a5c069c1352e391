"""Queries from other processes while one process holds the embedded chDB folder.

chDB allows one process per data folder, so the holder (a worker, `llmwatch db serve`) runs a small HTTP endpoint
on 127.0.0.1 (random port, daemon thread, bearer token) and publishes it in an owner file next to the folder
(0600, {pid, url, token, path}). `open_query_client()` in another process finds a live owner and returns a
RemoteQueryClient; otherwise it opens the folder itself.

Writes: the endpoint is read-only. It runs every statement on its own session with readonly=2 (SELECT, SHOW,
DESCRIBE, EXISTS and setting changes pass; INSERT, DDL, OPTIMIZE and `SETTINGS readonly=0` are refused by the
engine, not by parsing SQL here). The holder is the only writer, through its sink, so ad-hoc writes cannot race
its batches or its dedup; to write by hand, stop the holder and run `llmwatch db query` directly on the folder.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from llmwatch.errors import ClickHouseError
from llmwatch.tls import default_tls_context

from .client import connect
from .lock import Owner, embedded_path, live_owner, remove_owner, write_owner
from .render import jsonable

if TYPE_CHECKING:
    from llmwatch.settings import Settings

log = logging.getLogger(__name__)

MAX_SQL_BYTES = 1_000_000


class QueryResultLike(Protocol):
    @property
    def column_names(self) -> Sequence[str]: ...

    @property
    def result_rows(self) -> Sequence[Sequence[Any]]: ...


class QueryClient(Protocol):
    """What `db query` needs from a client: clickhouse-connect's Client and RemoteQueryClient both fit. Values
    travel as server-side parameters (`{name:Type}` in the SQL), never spliced into its text."""

    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> QueryResultLike: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Rows:
    column_names: tuple[str, ...]
    result_rows: list[list[Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _QueryServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that connects and sends nothing does not hold a thread forever

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode()):
            return True
        self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path != "/ping":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        self._reply(HTTPStatus.OK, {"ok": True, "pid": os.getpid()})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path != "/query":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_SQL_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"request over {MAX_SQL_BYTES} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length))
            sql, parameters = body["sql"], body.get("parameters") or None
            if not isinstance(sql, str):
                raise TypeError("sql must be a string")
            if parameters is not None and not isinstance(parameters, dict):
                raise TypeError("parameters must be an object")
        except (ValueError, KeyError, TypeError) as e:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f'body must be {{"sql": "...", "parameters": {{…}}}}: {e}'})
            return
        try:
            result = self.server.client.query(sql, parameters=parameters)
        except Exception as e:  # the engine's message is what the caller needs (syntax, readonly, missing table)
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        rows = [[jsonable(v) for v in row] for row in result.result_rows]
        self._reply(HTTPStatus.OK, {"columns": list(result.column_names), "rows": rows})

    def log_message(self, format: str, *args: Any) -> None:  # stdlib prints to stderr; we log instead
        log.debug("query endpoint: " + format, *args)


class _QueryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, client: Any, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.client = client
        self.token = token


class QueryEndpoint:
    """start()/stop() (or `with`) the endpoint and its owner file; a no-op for a ClickHouse server URL."""

    def __init__(self, client: Any, settings: Settings, *, allow_writes: bool = False) -> None:
        self._client = client
        self._settings = settings
        self._allow_writes = allow_writes
        self._server: _QueryServer | None = None
        self._own_client: Any = None
        self._folder: Path | None = None
        self.url: str | None = None

    def start(self) -> QueryEndpoint:
        if not self._settings.clickhouse_embedded or self._server is not None:
            return self
        self._folder = embedded_path(self._settings.clickhouse_url).resolve()
        if self._allow_writes:
            client = self._client
        else:
            # A second session on the same in-process engine: readonly=2 cannot be set per query on chDB (the
            # driver restores settings with SET, which readonly refuses), and it must not leak into the caller's.
            client = self._own_client = connect(self._settings, readonly=True)
        token = secrets.token_urlsafe(32)
        self._server = _QueryServer(client, token)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, name="llmwatch-query-endpoint", daemon=True).start()
        write_owner(self._folder, Owner(pid=os.getpid(), url=self.url, token=token, path=str(self._folder)))
        log.info("serving queries on the embedded ClickHouse at %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._folder is not None:
            remove_owner(self._folder, os.getpid())
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None

    def __enter__(self) -> QueryEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve_queries(client: Any, settings: Settings, *, allow_writes: bool = False) -> Iterator[QueryEndpoint]:
    """Serve read-only queries to other processes for as long as the block runs (the worker wraps its run)."""
    endpoint = QueryEndpoint(client, settings, allow_writes=allow_writes)
    with endpoint:
        yield endpoint


class RemoteQueryClient:
    """The subset of the clickhouse-connect client that `db query` uses, over the holder's endpoint."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 120.0) -> None:
        self.url = url
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            trust_env=False,
            verify=default_tls_context(),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ClickHouseError(f"query endpoint {self.url} unreachable: {e}") from e
        try:
            body = response.json()
        except ValueError as e:
            raise ClickHouseError(f"query endpoint {self.url} answered {response.status_code} without JSON") from e
        if response.status_code != HTTPStatus.OK:
            raise ClickHouseError(body.get("error") or f"query endpoint answered {response.status_code}")
        return body

    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> Rows:
        payload: dict[str, Any] = {"sql": query}
        if parameters:
            payload["parameters"] = {name: wire_parameter(v) for name, v in parameters.items()}
        body = self._call("POST", "/query", json=payload)
        return Rows(tuple(body["columns"]), body["rows"])

    def ping(self) -> bool:
        return bool(self._call("GET", "/ping").get("ok"))

    def close(self) -> None:
        self._http.close()


def wire_parameter(value: Any) -> Any:
    """A query parameter as JSON can carry it to the holder: datetimes in ClickHouse's text form (UTC), the
    rest as they are (ClickHouse parses a parameter's text by the type the SQL names)."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, (list, tuple)):
        return [wire_parameter(v) for v in value]
    return value


def open_query_client(settings: Settings, *, require_holder: bool = False) -> QueryClient:
    """Through the holder's endpoint when another process holds the embedded folder, else a direct client.

    `require_holder`: never open the embedded folder here (chDB keeps it locked by the first process that opens
    it, which would shut out the worker about to start); raise ClickHouseError while no other process holds it."""
    if settings.clickhouse_embedded:
        owner = live_owner(embedded_path(settings.clickhouse_url).resolve())
        if owner is not None and owner.pid != os.getpid():
            log.debug("routing the query through process %d at %s", owner.pid, owner.url)
            return RemoteQueryClient(owner.url, owner.token)
        if require_holder:
            raise ClickHouseError("no other process holds the embedded ClickHouse yet")
    return connect(settings)
