"""The broker's jars: fetched once from Maven Central with Maven, then served from the cache.

Only Java and Maven are needed on the machine; no tarball mirror, no Docker. The jar set is built into a
temporary folder and renamed into place, so an interrupted download never passes for a cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from filelock import FileLock

from llmwatch.errors import ConfigError, KafkaError

Echo = Callable[[str], None]

_POM = files("llmwatch.deploy") / "local/kafka/pom.xml"
_SUPPORTED = re.compile(r"^3\.(\d+)\.\d+$")  # KRaft combined mode, log4j 1 (reload4j), kafka.tools.StorageTool
_MIN_JAVA = 11
_MVN_TIMEOUT_S = 900


@dataclass(frozen=True)
class KafkaDist:
    version: str
    cache_root: Path  # settings.cache_dir

    @property
    def home(self) -> Path:
        return self.cache_root / "kafka" / self.version

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def maven_repo(self) -> Path:
        """Maven's local repository, kept under our cache so `kafka up` touches nothing else in $HOME."""
        return self.cache_root / "maven"

    @property
    def core_jar(self) -> Path:
        return self.libs / f"kafka_2.13-{self.version}.jar"

    def is_cached(self) -> bool:
        return self.core_jar.is_file()

    def classpath(self) -> str:
        return f"{self.libs}/*"


def check_version(version: str) -> None:
    """Refuse releases this launcher was not written for (4.x moved to log4j2 and dropped settings)."""
    match = _SUPPORTED.match(version)
    if match is None or int(match.group(1)) < 7:
        raise ConfigError(
            f"LLMWATCH_KAFKA_VERSION={version!r}: `llmwatch kafka up` runs Apache Kafka 3.7-3.9 (x.y.z, e.g. 3.9.2)"
        )


def find_java() -> Path:
    """$JAVA_HOME/bin/java, else java on PATH; the broker needs Java 11+ (17 recommended)."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not os.access(candidate, os.X_OK):
        found = shutil.which("java")
        if found is None:
            raise KafkaError(
                "Java not found (no java on PATH, JAVA_HOME unset or wrong): the Kafka broker needs Java 11+; "
                "install a JDK/JRE 17 (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
            )
        candidate = Path(found)
    major = java_major_version(candidate)
    if major < _MIN_JAVA:
        raise KafkaError(f"{candidate} is Java {major}; the Kafka broker needs Java {_MIN_JAVA}+ (17 recommended)")
    return candidate


def java_major_version(java: Path) -> int:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise KafkaError(f"cannot run {java} -version: {e}") from e
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise KafkaError(f"cannot tell the Java version from `{java} -version`: {out.stderr.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def find_mvn() -> Path:
    found = shutil.which("mvn")
    if found is None:
        raise KafkaError(
            "Maven not found (no mvn on PATH): `llmwatch kafka up` downloads the Kafka jars from Maven Central "
            "with Maven once; install it (Debian: apt-get install maven), or copy the jars into the cache"
        )
    return Path(found)


def ensure_jars(dist: KafkaDist, echo: Echo) -> Path:
    """The folder of broker jars, downloading them the first time (serialised across processes)."""
    check_version(dist.version)
    if dist.is_cached():
        return dist.libs
    dist.home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dist.home / ".provision.lock")):
        if dist.is_cached():  # another process finished while we waited
            return dist.libs
        mvn = find_mvn()
        echo(f"downloading Kafka {dist.version} jars from Maven Central… (once; cached in {dist.libs})")
        staging = dist.home / f"libs.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _copy_dependencies(mvn, dist, staging)
            if not (staging / dist.core_jar.name).is_file():
                raise KafkaError(f"Maven finished but {dist.core_jar.name} is not among the jars in {staging}")
            shutil.rmtree(dist.libs, ignore_errors=True)
            os.replace(staging, dist.libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dist.libs


def _copy_dependencies(mvn: Path, dist: KafkaDist, out_dir: Path) -> None:
    pom_copy = dist.home / "pom.xml"
    with as_file(_POM) as pom:
        shutil.copyfile(pom, pom_copy)
    cmd = [
        str(mvn),
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom_copy),
        f"-Dkafka.version={dist.version}",
        f"-Dmaven.repo.local={dist.maven_repo}",
        f"-DoutputDirectory={out_dir}",
        "dependency:copy-dependencies",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, cwd=dist.home)
    except subprocess.TimeoutExpired as e:
        raise KafkaError(f"Maven took over {_MVN_TIMEOUT_S} s to fetch the Kafka jars; is Maven Central slow?") from e
    except OSError as e:
        raise KafkaError(f"cannot run {mvn}: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise KafkaError(
            f"Maven could not fetch org.apache.kafka:kafka_2.13:{dist.version} (exit {proc.returncode}); "
            f"is it a released version and is Maven Central reachable?\n{tail}"
        )
