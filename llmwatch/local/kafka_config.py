"""What the local broker listens on and how its server.properties reads.

Pure functions (no processes, no network besides binding a probe socket) so they unit-test without Java.
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import re
import socket
import uuid
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from llmwatch.errors import ConfigError, KafkaError

_TEMPLATE = files("llmwatch.deploy") / "local/kafka/server.properties"
_VOTERS = re.compile(r"^controller\.quorum\.voters=\d+@.*:(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class LocalAddress:
    """A loopback host:port a local broker may bind."""

    host: str
    port: int

    @property
    def url_host(self) -> str:
        """The host as it goes into a listener URL (IPv6 literals need brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"{self.url_host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_local_address(bootstrap: str) -> LocalAddress:
    """The one loopback address a local broker serves; a remote or multi-broker setting is refused.

    A local broker on a non-loopback interface would be an unauthenticated Kafka open to the network.
    """
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    if len(servers) != 1:
        raise ConfigError(
            f"LLMWATCH_KAFKA={bootstrap!r} names {len(servers)} brokers; a local broker needs exactly one "
            "loopback host:port (e.g. 127.0.0.1:9092)"
        )
    server = servers[0]
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<host>[^:\[\]]+):(?P<port>\d+)", server)
    if match is None:
        raise ConfigError(f"LLMWATCH_KAFKA={server!r} is not host:port (IPv6: [::1]:9092)")
    host = match["v6"] or match["host"]
    port = int(match["p6"] or match["port"])
    if not 0 < port < 65536:
        raise ConfigError(f"LLMWATCH_KAFKA={server!r}: port {port} is out of range")
    if not _is_loopback(host):
        raise ConfigError(
            f"LLMWATCH_KAFKA={server!r} is not a loopback address: `llmwatch kafka up` only starts a local broker "
            "on 127.0.0.1, ::1 or localhost. Use LLMWATCH_KAFKA=127.0.0.1:9092, or run your own cluster for "
            "remote addresses"
        )
    return LocalAddress(host=host, port=port)


def _bind_family(host: str) -> tuple[socket.AddressFamily, str]:
    if host == "localhost":
        return socket.AF_INET, "127.0.0.1"
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind host:port now (SO_REUSEADDR, as the broker binds)."""
    family, bind_host = _bind_family(host)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise KafkaError(f"cannot bind {host}:{port}: {e}") from e
    return True


def free_port(host: str) -> int:
    """A port the kernel hands out as free right now."""
    family, bind_host = _bind_family(host)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((bind_host, 0))
        return int(sock.getsockname()[1])


def previous_controller_port(properties: str) -> int | None:
    """The controller port a rendered server.properties used (kept across restarts when still free)."""
    match = _VOTERS.search(properties)
    return int(match.group(1)) if match else None


def choose_controller_port(address: LocalAddress, previous: int | None) -> int:
    if previous and previous != address.port and port_is_free(address.host, previous):
        return previous
    port = free_port(address.host)
    while port == address.port:  # pragma: no cover - the kernel would not hand out a bound port
        port = free_port(address.host)
    return port


def render_server_properties(address: LocalAddress, controller_port: int, log_dir: Path) -> str:
    """server.properties for a combined broker+controller node on `address`."""
    if controller_port == address.port:
        raise ConfigError(f"the controller port must differ from the broker port {address.port}")
    template = Template(_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        host=address.url_host,
        port=address.port,
        controller_port=controller_port,
        log_dir=str(log_dir.resolve()),
    )


def parse_properties(text: str) -> dict[str, str]:
    """key=value lines of a .properties file (enough for the files we render)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's Uuid.randomUuid() prints it (22 url-safe base64 chars, no leading '-')."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid
