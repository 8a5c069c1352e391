"""One way to open ClickHouse: the embedded chDB folder or a server, chosen by `settings.clickhouse_url`.

Every caller (sink, CLI, tests) gets the same clickhouse-connect client, with the same session settings, so
dedup and time zones behave alike everywhere. Driver errors come out as ClickHouseError, without the password.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect

from llmwatch.errors import ClickHouseError

from .lock import UNKNOWN_HOLDER, embedded_path, lock_holder, owner_file

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from llmwatch.settings import Settings

log = logging.getLogger(__name__)

#: Session settings of every client: a retried identical insert block is also dropped from the materialized
#: views (see sql/migrations/0010_events_hourly_mv.up.sql).
SESSION_SETTINGS: dict[str, Any] = {"deduplicate_blocks_in_dependent_materialized_views": 1}


class DatabaseLocked(ClickHouseError):
    """The embedded folder is held by another process."""


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{parts.username}:***@{netloc[2]}").geturl()


def _scrub(message: str, url: str) -> str:
    password = urlsplit(url).password
    if password:
        for secret in {password, unquote(password)}:
            message = message.replace(secret, "***")
    return message


def _embedded_kwargs(url: str) -> dict[str, Any]:
    folder = embedded_path(url).resolve()
    holder = lock_holder(folder)
    if holder is not None and holder != os.getpid():  # our own engine may open more clients
        who = "another process" if holder == UNKNOWN_HOLDER else f"process {holder}"
        raise DatabaseLocked(
            f"the embedded ClickHouse at {folder} is held by {who}; chDB allows one process per folder. "
            f"`llmwatch db query` goes through the holder when it serves queries ({owner_file(folder).name}); "
            "stop it for anything else (e.g. `db migrate`)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return {"dsn": f"chdb://{folder}"}


def _server_kwargs(settings: Settings) -> dict[str, Any]:
    url = settings.clickhouse_url
    scheme = urlsplit(url).scheme
    kwargs: dict[str, Any] = {"dsn": url, "interface": scheme}
    if scheme == "https" and settings.clickhouse_ca:
        kwargs["ca_cert"] = str(settings.clickhouse_ca)
    return kwargs


def connect(settings: Settings, *, readonly: bool = False) -> Client:
    """A clickhouse-connect client; `readonly` opens a session that refuses writes and DDL (readonly=2)."""
    url = settings.clickhouse_url
    kwargs = _embedded_kwargs(url) if settings.clickhouse_embedded else _server_kwargs(settings)
    session = dict(SESSION_SETTINGS)
    if readonly:
        session["readonly"] = 2
    try:
        client = clickhouse_connect.get_client(**kwargs, settings=session, tz_mode="aware")
    except Exception as e:
        raise ClickHouseError(f"cannot open ClickHouse at {safe_url(url)}: {_scrub(str(e), url)}") from e
    log.debug("connected to ClickHouse at %s", safe_url(url))
    return client
