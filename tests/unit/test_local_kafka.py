"""The local broker's pure parts: addresses, server.properties, pid files, provisioning errors. No broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmwatch.errors import ConfigError, KafkaError
from llmwatch.local.kafka import BrokerPaths, BrokerState, LocalKafka, last_exception, tail
from llmwatch.local.kafka_config import (
    LocalAddress,
    choose_controller_port,
    free_port,
    new_cluster_id,
    parse_local_address,
    parse_properties,
    port_is_free,
    previous_controller_port,
    render_server_properties,
)
from llmwatch.local.kafka_dist import KafkaDist, check_version, ensure_jars, find_java, find_mvn
from llmwatch.local.pidfile import PidFile
from llmwatch.settings import Settings


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def no_tools_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- addresses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bootstrap", "host", "port"),
    [("127.0.0.1:9092", "127.0.0.1", 9092), ("localhost:19092", "localhost", 19092), ("[::1]:9093", "::1", 9093)],
)
def test_loopback_addresses_are_accepted(bootstrap: str, host: str, port: int) -> None:
    assert parse_local_address(bootstrap) == LocalAddress(host, port)


@pytest.mark.parametrize("bootstrap", ["10.1.2.3:9092", "0.0.0.0:9092", "kafka.example.com:9092", "192.168.0.5:9092"])
def test_non_loopback_addresses_are_refused(bootstrap: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_local_address(bootstrap)


@pytest.mark.parametrize(
    ("bootstrap", "why"),
    [("127.0.0.1:9092,127.0.0.1:9093", "exactly one"), ("127.0.0.1", "not host:port"), ("127.0.0.1:0", "out of range")],
)
def test_malformed_local_addresses_say_why(bootstrap: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_local_address(bootstrap)


def test_ipv6_hosts_get_brackets_in_listener_urls() -> None:
    assert str(LocalAddress("::1", 9092)) == "[::1]:9092"
    assert str(LocalAddress("127.0.0.1", 9092)) == "127.0.0.1:9092"


# --- server.properties ---------------------------------------------------------------------------
def test_server_properties_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(LocalAddress("127.0.0.1", 19092), 19093, tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:19093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str((tmp_path / "data").resolve())
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert int(props["log.retention.hours"]) > 0


def test_server_properties_remembers_the_controller_port(tmp_path: Path) -> None:
    text = render_server_properties(LocalAddress("::1", 9092), 41234, tmp_path)
    assert "PLAINTEXT://[::1]:9092" in text
    assert previous_controller_port(text) == 41234
    assert previous_controller_port("# nothing here\n") is None


def test_controller_port_must_differ_from_broker_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="controller port"):
        render_server_properties(LocalAddress("127.0.0.1", 9092), 9092, tmp_path)


def test_controller_port_is_reused_while_free_and_replaced_when_taken(listening: int) -> None:
    address = LocalAddress("127.0.0.1", free_port("127.0.0.1"))
    previous = free_port("127.0.0.1")
    assert choose_controller_port(address, previous) == previous
    replaced = choose_controller_port(address, listening)
    assert replaced not in {listening, address.port}
    assert port_is_free("127.0.0.1", replaced)


def test_port_is_free_sees_a_listener(listening: int) -> None:
    assert not port_is_free("127.0.0.1", listening)
    assert port_is_free("127.0.0.1", free_port("127.0.0.1"))


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# --- pid files -----------------------------------------------------------------------------------
def test_pid_file_round_trip_and_garbage(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "broker.pid", marker="kafka.Kafka")
    assert pidfile.read() is None
    pidfile.write(12345)
    assert pidfile.read() == 12345
    pidfile.path.write_text("not a pid\n")
    assert pidfile.read() is None
    assert pidfile.process() is None
    assert not pidfile.path.exists()  # garbage is cleaned up


def test_pid_file_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "broker.pid", marker="kafka.Kafka")
    pidfile.write(_dead_pid())
    assert pidfile.process() is None
    assert not pidfile.path.exists()


def test_pid_file_trusts_only_a_process_running_our_command(tmp_path: Path) -> None:
    marker = str(tmp_path / "server.properties")
    pidfile = PidFile(tmp_path / "broker.pid", marker=marker)
    pidfile.write(os.getpid())  # alive, but not ours: a reused pid must never be signalled
    assert pidfile.process() is None
    code = "import time; print('running', flush=True); time.sleep(60)"
    sleeper = subprocess.Popen([sys.executable, "-c", code, marker], stdout=subprocess.PIPE, text=True)
    try:
        # its command line is ours only once it has exec'd: until then /proc shows the forked parent's (a loaded
        # machine made that window long enough to fail); its first line says it runs the new program
        assert sleeper.stdout is not None and sleeper.stdout.readline() == "running\n"
        pidfile.write(sleeper.pid)
        proc = pidfile.process()
        assert proc is not None
        assert proc.pid == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    assert pidfile.process() is None


# --- provisioning errors -------------------------------------------------------------------------
@pytest.mark.usefixtures("no_tools_on_path")
def test_no_java_on_path_is_named() -> None:
    with pytest.raises(KafkaError, match="Java not found"):
        find_java()


@pytest.mark.usefixtures("no_tools_on_path")
def test_no_maven_on_path_is_named_when_the_cache_is_empty(tmp_path: Path) -> None:
    with pytest.raises(KafkaError, match="Maven not found"):
        find_mvn()
    with pytest.raises(KafkaError, match="Maven not found"):
        ensure_jars(KafkaDist("3.9.2", tmp_path / "cache"), echo=lambda _: None)


@pytest.mark.usefixtures("no_tools_on_path")
def test_a_cached_jar_set_needs_no_maven(tmp_path: Path) -> None:
    dist = KafkaDist("3.9.2", tmp_path / "cache")
    dist.libs.mkdir(parents=True)
    dist.core_jar.write_bytes(b"PK")
    said: list[str] = []
    assert ensure_jars(dist, echo=said.append) == dist.libs
    assert said == []  # no "downloading" line


@pytest.mark.parametrize("version", ["3.9.1", "3.9.2", "3.8.0", "3.7.2"])
def test_supported_versions(version: str) -> None:
    check_version(version)


@pytest.mark.parametrize("version", ["4.0.0", "3.6.2", "2.8.1", "latest", "3.9"])
def test_unsupported_versions_are_refused(version: str) -> None:
    with pytest.raises(ConfigError, match=r"3\.7-3\.9"):
        check_version(version)


# --- the manager, without a broker ---------------------------------------------------------------
def _settings(tmp_path: Path, kafka: str) -> Settings:
    return Settings(kafka=kafka, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def test_up_refuses_a_remote_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        LocalKafka(_settings(tmp_path, "10.0.0.7:9092")).up()
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_up_names_a_taken_port(tmp_path: Path, listening: int) -> None:
    with pytest.raises(KafkaError, match=rf"port 127\.0\.0\.1:{listening} is taken by another process"):
        LocalKafka(_settings(tmp_path, f"127.0.0.1:{listening}")).up()


@pytest.mark.usefixtures("no_tools_on_path")
def test_up_without_java_says_so(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    with pytest.raises(KafkaError, match="Java not found"):
        LocalKafka(_settings(tmp_path, f"127.0.0.1:{port}")).up()


def test_status_and_down_when_nothing_runs(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    kafka = LocalKafka(_settings(tmp_path, f"127.0.0.1:{port}"))
    kafka.pidfile.write(_dead_pid())  # left by a crash
    state = kafka.status()
    assert state.state is BrokerState.STOPPED
    assert not state.up
    assert "not running" in state.describe()
    assert kafka.down().pid is None
    assert not kafka.paths.pid_file.exists()


def test_down_purge_removes_the_log_dir(tmp_path: Path) -> None:
    kafka = LocalKafka(_settings(tmp_path, f"127.0.0.1:{free_port('127.0.0.1')}"))
    (kafka.paths.log_dir / "llm.dlq-0").mkdir(parents=True)
    result = kafka.down(purge=True)
    assert result.purged
    assert not kafka.paths.log_dir.exists()


def test_broker_paths_and_log_tail(tmp_path: Path) -> None:
    paths = BrokerPaths(tmp_path)
    assert paths.broker_log.name == "broker.log"
    assert not paths.is_formatted()
    paths.broker_log.write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert tail(paths.broker_log, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""


def test_cli_prints_config_errors_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LLMWATCH_KAFKA": "10.0.0.7:9092", "LLMWATCH_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "llmwatch", "kafka", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == ConfigError.exit_code
    assert "not a loopback address" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cause_of_a_broker_crash_is_pulled_from_its_log() -> None:
    log = (
        "[2026-11-22 05:02:35,569] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\n"
        "java.lang.RuntimeException: Stored node id 7 doesn't match previous node id 1 in /d/meta.properties.\n"
        "\tat org.apache.kafka.metadata.properties.MetaPropertiesEnsemble.verify(MetaPropertiesEnsemble.java:513)\n"
    )
    assert last_exception(log) == "Stored node id 7 doesn't match previous node id 1 in /d/meta.properties."
    assert last_exception("[x] INFO Kafka Server started (kafka.server.KafkaRaftServer)\n") is None
