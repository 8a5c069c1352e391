"""Deployment files stay true to the code: docker-compose.yml, deploy/k8s, the Dockerfile, Prometheus alert rules,
Grafana dashboards and the docs that describe them.

No network and no Docker: names are checked against the code (the click CLI, Settings, the topic registry, the
Prometheus registries of the worker and the gateway, the ClickHouse migrations). Kubernetes objects are validated
against the API schemas that kubernetes-validate ships; PromQL is parsed with promql-parser. The dashboards'
ClickHouse SQL runs against the real engine (chDB) in a subprocess.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
import yaml
from pydantic import BaseModel

from llmwatch import __version__
from llmwatch.cli import cli
from llmwatch.schemas import topic_registry
from llmwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS = ROOT / "deploy" / "prometheus"
TOPICS_SCRIPT = ROOT / "deploy" / "compose" / "kafka" / "create-topics.sh"
LLMWATCH_IMAGE = "llmwatch/llmwatch"
SEVERITIES = {"info", "warning", "critical"}


# ------------------------------------------------------------------------------------------------ helpers
def load_yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def k8s_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out.extend(load_yaml_docs(path))
    return out


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> Any:
    """Compose's variable interpolation with nothing set: `${X:-default}` → default, `${X}` → ''."""
    if not isinstance(value, str):
        return value
    value = value.replace("$$", "\0")
    value = _VAR.sub(lambda m: (m.group(3) or "") if m.group(2) in (":-", "-") else "", value)
    return value.replace("\0", "$")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def compose_variables() -> set[str]:
    """The variables docker-compose.yml interpolates (in values, not comments)."""
    found = set()
    for text in _strings(compose()):
        found.update(m.group(1) or m.group(4) for m in _VAR.finditer(text.replace("$$", "")))
    return found


def env_dict(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def settings_env_names() -> set[str]:
    """Every LLMWATCH_* variable Settings reads: `LLMWATCH_<FIELD>`, and `LLMWATCH_<FIELD>__<SUB>` when nested."""
    prefix = Settings.model_config["env_prefix"]
    delimiter = Settings.model_config["env_nested_delimiter"]
    names = set()
    for name, field in Settings.model_fields.items():
        top = f"{prefix}{name}".upper()
        names.add(top)
        nested = _model_in(field.annotation)
        if nested is not None:
            names.update(f"{top}{delimiter}{sub}".upper() for sub in nested.model_fields)
    return names


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings built from exactly these LLMWATCH_* variables (validation errors fail the test)."""
    for key in list(os.environ):
        if key.upper().startswith("LLMWATCH_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def known_agents() -> tuple[str, ...]:
    """streams/worker.py's KNOWN_AGENTS, read from the source (importing it would import Faust)."""
    tree = ast.parse((ROOT / "streams" / "worker.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "KNOWN_AGENTS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("KNOWN_AGENTS not found in streams/worker.py")


def _consume_option(cmd: click.Command, args: list[str], i: int, ctx: click.Context) -> int:
    token = args[i]
    name, has_value, inline = token.partition("=")
    for param in cmd.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            break
    else:
        if name in ("--help", "-h"):
            return i + 1
        raise AssertionError(f"`{cmd.name}` has no option {name} (in {args})")
    if param.is_flag or param.count:
        assert not has_value, f"{name} is a flag and takes no value"
        return i + 1
    if has_value:
        value, nxt = inline, i + 1
    else:
        assert i + 1 < len(args), f"{name} needs a value"
        value, nxt = args[i + 1], i + 2
    if not isinstance(param.type, click.Path):  # paths are the container's, not this machine's
        param.type.convert(value, param, ctx)  # Choice, numbers and ranges raise BadParameter
    if name == "--agents":
        unknown = set(value.split(",")) - set(known_agents())
        assert not unknown, f"unknown agents {unknown}"
    return nxt


def check_llmwatch_args(args: list[str]) -> list[str]:
    """Parse `args` (what follows `llmwatch`) against the click CLI; returns the command path."""
    args = [interpolate(a) for a in args]
    cmd: click.Command = cli
    path: list[str] = []
    i = 0
    while isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        while i < len(args) and args[i].startswith("-"):
            i = _consume_option(cmd, args, i, ctx)
        assert i < len(args), f"`llmwatch {' '.join(path)}` needs a subcommand (in {args})"
        sub = cmd.get_command(ctx, args[i])
        assert sub is not None, f"`llmwatch {' '.join([*path, args[i]])}` is not a command"
        path.append(args[i])
        cmd, i = sub, i + 1
    ctx = click.Context(cmd)
    positionals: list[str] = []
    while i < len(args):
        if args[i].startswith("-") and len(args[i]) > 1 and not cmd.ignore_unknown_options:
            i = _consume_option(cmd, args, i, ctx)
        else:
            positionals.append(args[i])
            i += 1
    if not cmd.ignore_unknown_options:
        arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
        most = sum(10**6 if p.nargs < 0 else p.nargs for p in arguments)
        assert len(positionals) <= most, f"`llmwatch {' '.join(path)}` takes at most {most} arguments: {positionals}"
    return path


def command_list(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def llmwatch_args_of_service(service: dict[str, Any]) -> list[str]:
    args = command_list(service.get("command", []))
    return args[1:] if args[:1] == ["llmwatch"] else args


def image_tag(image: str) -> str:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"image {image} has no tag"
    return tag


# ------------------------------------------------------------------------------------------------ compose
def test_compose_has_every_part() -> None:
    services = compose()["services"]
    expected = {"kafka", "kafka-topics", "clickhouse", "migrate", "vllm", "gateway", "worker", "judge", "controller"}
    assert expected <= set(services), sorted(expected - set(services))
    assert {"prometheus", "grafana"} <= set(services)


def test_compose_images_are_official_and_pinned() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        image = svc["image"]
        tag = image_tag(image)
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image} to a release"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_compose_llmwatch_services_use_one_image_of_this_version() -> None:
    for name, svc in compose()["services"].items():
        if svc["image"].startswith(LLMWATCH_IMAGE + ":"):
            assert image_tag(svc["image"]) == __version__, name
            assert svc["build"]["context"] == "."


@pytest.mark.parametrize(
    "service", [n for n, s in compose()["services"].items() if s["image"].startswith(LLMWATCH_IMAGE + ":")]
)
def test_compose_commands_are_real_llmwatch_commands(service: str) -> None:
    svc = compose()["services"][service]
    path = check_llmwatch_args(llmwatch_args_of_service(svc))
    expected = {
        "migrate": ["db", "migrate"],
        "gateway": ["serve"],
        "worker": ["worker"],
        "judge": ["worker"],
        "controller": ["controller"],
        "loadgen": ["loadgen"],
    }
    if service in expected:
        assert path == expected[service]


def test_compose_gateway_serves_the_openai_engine_config() -> None:
    svc = compose()["services"]["gateway"]
    args = llmwatch_args_of_service(svc)
    config_in_container = args[args.index("--config") + 1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
    source = ROOT / mounts[config_in_container]
    from llmwatch.inference.app import load_config

    config = load_config(source)
    assert all(e.kind == "openai" for e in config.engines)
    upstreams = {e.upstream.split("//")[1].split(":")[0]: e.versions for e in config.engines}
    services = compose()["services"]
    for host, versions in upstreams.items():
        served = [a.split("=", 1)[1] for a in services[host]["command"] if a.startswith("--served-model-name=")]
        assert len(served) == 1, f"{host}: give --served-model-name=VERSION"
        assert served == versions, f"{host} serves {served}, the gateway config expects {versions}"
        assert host in svc["depends_on"]


_PARSE_VLLM = """
import json, sys
from vllm.entrypoints.cli.serve import ServeSubcommand
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser

parser = FlexibleArgumentParser(prog="vllm")
ServeSubcommand().subparser_init(parser.add_subparsers())
out = {}
for name, args in json.load(sys.stdin).items():
    ns = parser.parse_args(["serve", *args])
    out[name] = {"model": ns.model_tag or ns.model, "served": ns.served_model_name, "port": ns.port}
print(json.dumps(out))
"""


@pytest.mark.integration
def test_compose_vllm_commands_parse_with_vllm_serve() -> None:
    """The vLLM services' arguments, as `vllm serve` (the image's release, where installed) parses them."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    services = compose()["services"]
    vllm_services = {n: s for n, s in services.items() if s["image"].startswith("vllm/vllm-openai:")}
    for svc in vllm_services.values():
        assert svc["entrypoint"] == ["vllm", "serve"]
    commands = {n: [interpolate(a) for a in s["command"]] for n, s in vllm_services.items()}
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_VLLM], input=json.dumps(commands), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    for name, args in parsed.items():
        assert args["port"] == 8000 and len(args["served"]) == 1, name
        assert args["model"] == commands[name][0], name


def test_compose_env_names_exist_in_settings_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    valid = settings_env_names()
    for name, svc in compose()["services"].items():
        env = {k: interpolate(v) for k, v in env_dict(svc.get("environment")).items()}
        ours = {k: v for k, v in env.items() if k.upper().startswith("LLMWATCH_")}
        unknown = set(map(str.upper, ours)) - valid
        assert not unknown, f"{name}: not settings: {sorted(unknown)}"
        if svc["image"].startswith(LLMWATCH_IMAGE + ":"):
            settings = settings_from_env(ours, monkeypatch)
            assert settings.kafka == "kafka:9092"
            assert not settings.clickhouse_embedded, f"{name}: workers scale only against a ClickHouse server"
            assert settings.worker.web_host == "0.0.0.0"


def test_compose_gpu_is_reserved_for_vllm() -> None:
    services = compose()["services"]
    vllm_services = [n for n, s in services.items() if s["image"].startswith("vllm/vllm-openai:")]
    assert vllm_services
    for name in vllm_services:
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name


def _agents(args: list[str]) -> set[str]:
    return set(args[args.index("--agents") + 1].split(",")) if "--agents" in args else set(known_agents())


def test_compose_worker_scales_and_singletons_are_single() -> None:
    services = compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "`--scale worker=N` needs neither"
    # agents that need every partition (judge, alerter) or own the rollout state (controller) are not in the
    # scalable worker; they run once each, the judge and alerter in a consumer group of their own
    assert _agents(llmwatch_args_of_service(worker)) == {"score", "window", "sink"}
    judge = services["judge"]
    assert _agents(llmwatch_args_of_service(judge)) == {"judge", "alerter"}
    assert env_dict(judge["environment"])["LLMWATCH_WORKER__APP_ID"] not in (
        Settings().worker.app_id,
        f"{Settings().worker.app_id}-controller",
    )
    for name in ("judge", "controller"):
        svc = services[name]
        assert "deploy" not in svc or svc["deploy"].get("replicas", 1) == 1
    every = set(known_agents())
    covered = _agents(llmwatch_args_of_service(worker)) | _agents(llmwatch_args_of_service(judge)) | {"controller"}
    assert covered == every, f"no service runs {every - covered}"


def test_compose_startup_order() -> None:
    services = compose()["services"]
    for name in ("worker", "judge", "controller"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"


def test_compose_bind_mounts_exist() -> None:
    for name, svc in compose()["services"].items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


def test_compose_migrations_target_the_clickhouse_service() -> None:
    services = compose()["services"]
    url = interpolate(env_dict(services["migrate"]["environment"])["LLMWATCH_CLICKHOUSE"])
    ch_env = {k: interpolate(v) for k, v in env_dict(services["clickhouse"]["environment"]).items()}
    user, password, db = ch_env["CLICKHOUSE_USER"], ch_env["CLICKHOUSE_PASSWORD"], ch_env["CLICKHOUSE_DB"]
    assert url == f"http://{user}:{password}@clickhouse:8123/{db}"


def test_compose_config_with_the_docker_client(tmp_path: Path) -> None:
    """`docker compose config` where a Compose client is installed (v2 plugin, or v1 `docker-compose`)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    elif shutil.which("docker-compose"):
        # v1 predates the top-level `name`; validate the rest
        data = compose()
        data.pop("name", None)
        copy = tmp_path / "docker-compose.yml"
        copy.write_text(yaml.safe_dump(data, sort_keys=False))
        cmd = ["docker-compose", "-f", str(copy), "--project-directory", str(ROOT), "config", "-q"]
    else:
        pytest.skip("no Docker Compose client installed")
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def test_compose_variables_are_documented() -> None:
    doc = (ROOT / "docs" / "operators.md").read_text()
    missing = sorted(v for v in compose_variables() if f"`{v}`" not in doc)
    assert not missing, f"document these docker-compose variables in docs/operators.md: {missing}"


# ------------------------------------------------------------------------------------------------ topics
def _script_topics() -> dict[str, tuple[str, str, str]]:
    topics = {}
    for line in TOPICS_SCRIPT.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["topic"] and len(parts) == 5:
            topics[parts[1]] = (parts[2], parts[3], parts[4])
    return topics


def test_topics_script_matches_the_registry() -> None:
    settings = Settings(partitions=7)
    registry = {s.name: s for s in topic_registry(settings).values()}
    script = _script_topics()
    assert set(script) == set(registry)
    for name, (partitions, policy, retention) in script.items():
        spec = registry[name]
        expected_partitions = "$PARTITIONS" if spec.partitions == settings.partitions else str(spec.partitions)
        assert partitions.strip('"') == expected_partitions, name
        assert spec.config()["cleanup.policy"] == policy, name
        assert (spec.retention_ms or "-") == (int(retention) if retention != "-" else "-"), name
    text = TOPICS_SCRIPT.read_text()
    assert f"max.message.bytes={next(iter(registry.values())).config()['max.message.bytes']}" in text


def test_k8s_topics_configmap_is_the_compose_script() -> None:
    cm = by_kind("ConfigMap")["llmwatch-kafka-topics"]
    assert cm["data"]["create-topics.sh"] == TOPICS_SCRIPT.read_text()


# ------------------------------------------------------------------------------------------------ Dockerfile
def test_dockerfile_is_one_image_with_a_gpu_variant() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["llmwatch"\]$', text, re.M)
    assert re.search(r"^ARG VARIANT=cpu$", text, re.M) and '"$VARIANT" = gpu' in text
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.search(r":3\.11\.\d+", base.group(1)), "pin the Python base image"
    for path in re.findall(r"^COPY (\S+) \./", text, re.M):
        assert (ROOT / path).exists(), path
    assert "deploy/python/overrides.txt" in text and "deploy/python/excludes.txt" in text


# ------------------------------------------------------------------------------------------------ Kubernetes
def test_k8s_manifests_validate_against_the_api_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = k8s_objects()
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30", strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    names = [(o["kind"], o["metadata"]["name"]) for o in k8s_objects()]
    assert len(names) == len(set(names)), "duplicate objects"


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _workloads() -> Iterator[dict[str, Any]]:
    for obj in k8s_objects():
        if obj["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            yield obj


def test_k8s_gateway_has_gpu_and_probes() -> None:
    gateway = by_kind("Deployment")["llmwatch-gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] in ("1", 1)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in (*ports, *ports.values())
    assert image_tag(container["image"]) == f"{__version__}-gpu"
    assert check_llmwatch_args(container.get("args", [])) == ["serve"]
    env = _env_of(container)
    assert int(env["LLMWATCH_GATEWAY__PORT"]) == ports["http"]
    assert env["LLMWATCH_GATEWAY__HOST"] == "0.0.0.0"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(Path(env["LLMWATCH_GATEWAY__CONFIG"]).parent) in mounts


def test_k8s_hpa_scales_the_gateway_on_real_metrics() -> None:
    (hpa,) = by_kind("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] == "llmwatch-gateway"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    exposed = exposed_metrics()
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            assert metric["pods"]["metric"]["name"] in exposed


def test_k8s_worker_replicas_do_not_exceed_partitions() -> None:
    worker = by_kind("Deployment")["llmwatch-worker"]
    partitions = int(by_kind("ConfigMap")["llmwatch-settings"]["data"]["LLMWATCH_PARTITIONS"])
    assert 1 <= worker["spec"]["replicas"] <= partitions
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert check_llmwatch_args(container["args"]) == ["worker"]


def test_k8s_controller_and_judge_are_single_replicas_recreated() -> None:
    deployments = by_kind("Deployment")
    for name in ("llmwatch-controller", "llmwatch-judge"):
        assert deployments[name]["spec"]["replicas"] == 1, name
        assert deployments[name]["spec"]["strategy"]["type"] == "Recreate", name
    (controller,) = deployments["llmwatch-controller"]["spec"]["template"]["spec"]["containers"]
    assert check_llmwatch_args(controller["args"]) == ["controller"]
    (judge,) = deployments["llmwatch-judge"]["spec"]["template"]["spec"]["containers"]
    assert check_llmwatch_args(judge["args"]) == ["worker"] and _agents(judge["args"]) == {"judge", "alerter"}
    assert _env_of(judge)["LLMWATCH_WORKER__APP_ID"] != Settings().worker.app_id
    (worker,) = deployments["llmwatch-worker"]["spec"]["template"]["spec"]["containers"]
    assert _agents(worker["args"]) == {"score", "window", "sink"}


def test_k8s_migrations_run_as_a_job() -> None:
    job = by_kind("Job")["llmwatch-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert check_llmwatch_args(container["args"]) == ["db", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_k8s_llmwatch_containers_run_real_commands_of_this_version() -> None:
    for obj in _workloads():
        for container in _containers(obj):
            if container["image"].startswith(LLMWATCH_IMAGE + ":"):
                assert image_tag(container["image"]).split("-")[0] == __version__
                assert container.get("command") in (None, ["llmwatch"])
                check_llmwatch_args(container.get("args", []))
            else:
                assert re.search(r"\d", image_tag(container["image"])), container["image"]


def _env_of(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    configmaps, secrets = by_kind("ConfigMap"), by_kind("Secret")
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "")
    return env


def test_k8s_settings_exist_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    valid = settings_env_names()
    for obj in _workloads():
        for container in _containers(obj):
            env = _env_of(container)  # KeyError here: an envFrom names a missing ConfigMap/Secret
            ours = {k: v for k, v in env.items() if k.upper().startswith("LLMWATCH_")}
            unknown = set(map(str.upper, ours)) - valid
            assert not unknown, f"{obj['metadata']['name']}: not settings: {sorted(unknown)}"
            if container["image"].startswith(LLMWATCH_IMAGE + ":"):
                settings = settings_from_env(ours, monkeypatch)
                assert not settings.clickhouse_embedded


def test_k8s_volumes_and_services_point_at_real_objects() -> None:
    configmaps, pvcs, deployments = by_kind("ConfigMap"), by_kind("PersistentVolumeClaim"), by_kind("Deployment")
    for obj in _workloads():
        spec = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in pvcs
        for container in _containers(obj):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{obj['metadata']['name']}: no volume {mount['name']}"
    for name, service in by_kind("Service").items():
        selector = service["spec"]["selector"]
        matches = [
            d for d in deployments.values() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"service {name} selects {len(matches)} deployments"
        port_names = {p["name"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
    for deployment in deployments.values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_k8s_scrape_annotations_match_container_ports() -> None:
    for deployment in by_kind("Deployment").values():
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            ports = {
                p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]
            }
            assert int(annotations["prometheus.io/port"]) in ports
            assert annotations["prometheus.io/path"] == "/metrics"


# ------------------------------------------------------------------------------------------------ gateway config
def _k8s_gateway_config() -> str:
    return by_kind("ConfigMap")["llmwatch-gateway-config"]["data"]["gateway.toml"]


@pytest.mark.parametrize("source", ["compose", "k8s"])
def test_gateway_configs_resolve(source: str) -> None:
    pytest.importorskip("fastapi")
    from llmwatch.inference.app import GatewayConfig, resolve_deployments

    text = (ROOT / "deploy" / "compose" / "gateway.toml").read_text() if source == "compose" else _k8s_gateway_config()
    config = GatewayConfig.model_validate(tomllib.loads(text))
    served = [v for e in config.engines for v in e.versions]
    assert len(served) == len(set(served)) and served, "every engine names its versions"
    deployments = resolve_deployments(config.deployments, served)
    assert deployments["chat"].baseline == "chat-v1" and len(deployments["chat"].versions) == 2


def test_k8s_gateway_models_are_on_the_models_volume() -> None:
    pytest.importorskip("fastapi")
    from llmwatch.inference.app import GatewayConfig

    config = GatewayConfig.model_validate(tomllib.loads(_k8s_gateway_config()))
    (container,) = by_kind("Deployment")["llmwatch-gateway"]["spec"]["template"]["spec"]["containers"]
    models = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "models")
    for engine in config.engines:
        assert engine.kind == "vllm" and str(engine.model).startswith(models + "/")


# ------------------------------------------------------------------------------------------------ metrics
class _FakePublisher:
    stats = SimpleNamespace(sent=0, failed=0, dropped=0, queued=0)
    connected = True
    queue_depth = 0


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def _exposed(registry: Any) -> dict[str, set[str]]:
    """Sample name → label names, per collector (a labelled metric with no child yet exposes no sample, so the
    label names come from the collector; prometheus_client keeps no public accessor for them)."""
    out: dict[str, set[str]] = {}
    for collector in list(registry._collector_to_names):
        declared = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            labels = declared | {k for s in family.samples for k in s.labels}
            for suffix in _SUFFIXES.get(family.type, ("",)):
                out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


_DEFINITION = re.compile(
    r'\b(Counter|Gauge|Histogram|Summary)\(\s*"(llmwatch_\w+)",\s*(?:"[^"]*"\s*)+(?:,\s*\[([^\]]*)\])?', re.S
)
_TYPES = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}


def _defined_in_sources() -> dict[str, set[str]]:
    """Metrics that agents register on the worker's registry when installed (judge, controller, alerter):
    read from their `Counter("llmwatch_…", "…", [labels])` definitions in the source."""
    out: dict[str, set[str]] = {}
    for folder in ("streams", "inference", "llmwatch"):
        for path in (ROOT / folder).rglob("*.py"):
            for kind, name, labels in _DEFINITION.findall(path.read_text()):
                names = set(re.findall(r'"(\w+)"', labels or ""))
                mtype = _TYPES[kind]
                base = name.removesuffix("_total") if mtype == "counter" else name
                for suffix in _SUFFIXES.get(mtype, ("",)):
                    out[base + suffix] = names | ({"le"} if suffix == "_bucket" else set())
    return out


def exposed_metrics() -> dict[str, set[str]]:
    """Every metric the workers', the controller's and the gateway's /metrics expose, with label names: the
    registries of streams/metrics.py and inference/gateway_metrics.py, plus what agents define at install."""
    from llmwatch.inference.gateway_metrics import GatewayMetrics
    from llmwatch.streams.metrics import WorkerMetrics

    out = _defined_in_sources()
    for registry in (WorkerMetrics().registry, GatewayMetrics(publisher=lambda: _FakePublisher()).registry):
        out.update(_exposed(registry))
    return out


def metric_families() -> set[str]:
    return {re.sub(r"_(bucket|sum|count|created|total)$", "", n) for n in exposed_metrics()}


def vllm_metric_bases() -> set[str] | None:
    """vLLM's metric names (`vllm:…`) from the installed vllm package's source, or None without vllm."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        return None
    names: set[str] = set()
    for path in (Path(spec.origin).parent / "v1" / "metrics").glob("*.py"):
        names.update(re.findall(r'"(vllm:[a-z_:]+)"', path.read_text(errors="replace")))
    return names or None


PROMQL_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _selectors(node: Any) -> Iterator[Any]:
    if type(node).__name__ == "VectorSelector":
        yield node
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from _selectors(child)


def check_promql(expr: str, where: str) -> None:
    promql_parser = pytest.importorskip("promql_parser")
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    tree = promql_parser.parse(expr)  # raises on a syntax error
    ours = exposed_metrics()
    vllm_names = vllm_metric_bases()
    for selector in _selectors(tree):
        name = selector.name
        labels = {m.name for m in selector.matchers.matchers}
        if name.startswith("llmwatch_"):
            assert name in ours, f"{where}: {name} is not a metric of streams/metrics.py or gateway_metrics.py"
            unknown = labels - ours[name] - {"job", "instance"}
            assert not unknown, f"{where}: {name} has no label {sorted(unknown)} (has {sorted(ours[name])})"
        elif name.startswith("vllm:"):
            if vllm_names is not None:
                base = re.sub(r"_(bucket|sum|count|total|created)$", "", name)
                assert name in vllm_names or base in vllm_names, f"{where}: vLLM has no metric {name}"
        else:
            assert name in PROMQL_BUILTINS, f"{where}: unknown metric {name}"


def test_exposed_metric_names_are_derived_from_the_code() -> None:
    names = exposed_metrics()
    # a sanity check of the derivation: counters get _total, histograms _bucket, publisher families too
    for expected in (
        "llmwatch_agent_events_total",
        "llmwatch_consumer_lag",
        "llmwatch_scoring_seconds_bucket",
        "llmwatch_gateway_requests_total",
        "llmwatch_gateway_publish_dropped_total",
        "llmwatch_gateway_requests_in_flight",
    ):
        assert expected in names
    assert "topic" in names["llmwatch_consumer_lag"] and "status" in names["llmwatch_gateway_requests_total"]


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_complete_and_reference_real_metrics() -> None:
    rules = _alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    used = set()
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        check_promql(rule["expr"], rule["alert"])
        used.update(re.findall(r"llmwatch_[a-z0-9_]+", rule["expr"]))
    # the list: consumer lag, DLQ growth, publish drops, sink lag, stuck batches
    for metric in (
        "llmwatch_consumer_lag",
        "llmwatch_dlq_total",
        "llmwatch_gateway_publish_dropped_total",
        "llmwatch_sink_lag_seconds",
        "llmwatch_stuck_batches_total",
    ):
        assert metric in used, f"no alert on {metric}"


def _metrics_port(service: dict[str, Any]) -> int:
    """The port a compose llmwatch service serves /metrics on, from its command (else the settings default)."""
    args = llmwatch_args_of_service(service)
    for option in ("--web-port", "--port"):
        if option in args:
            return int(args[args.index(option) + 1])
    return Settings().gateway.port if args[0] == "serve" else Settings().worker.web_port


def test_prometheus_config_loads_the_rules_and_scrapes_every_role() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    prometheus = compose()["services"]["prometheus"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"]}
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == "./deploy/prometheus/alerts.yml"
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert {"llmwatch-gateway", "llmwatch-worker", "llmwatch-judge", "llmwatch-controller"} <= jobs
    rule_jobs = set()
    for rule in _alert_rules():
        rule_jobs.update(re.findall(r'job="([a-z-]+)"', rule["expr"]))
    assert rule_jobs <= jobs
    services = compose()["services"]
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                if host in services and services[host]["image"].startswith(LLMWATCH_IMAGE + ":"):
                    assert int(port) == _metrics_port(services[host]), f"{job['job_name']}: {target}"
    worker_job = next(j for j in config["scrape_configs"] if j["job_name"] == "llmwatch-worker")
    assert worker_job["dns_sd_configs"][0]["names"] == ["worker"] and "worker" in services
    assert yaml.safe_load((PROMETHEUS / "kubernetes-scrape.yml").read_text())["scrape_configs"]


def test_every_rule_links_its_runbook_and_has_a_promtool_test() -> None:
    """runbook_url points at the rule's row in docs/operators.md; deploy/prometheus/tests holds, for every rule, a
    case where it fires and one where it does not (tests/integration/test_alerting_tools.py runs them)."""
    operators = (ROOT / "docs" / "operators.md").read_text()
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((PROMETHEUS / "tests").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == ["../alerts.yml"], path
        for test in doc["tests"]:
            for case in test["alert_rule_test"]:
                (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    for rule in _alert_rules():
        name = rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"docs/operators.md#{name}", name
        assert f'<a id="{name}"></a>' in operators, f"docs/operators.md has no anchor for {name}"
        assert name in fires, f"no promtool test where {name} fires"
        assert name in quiet, f"no promtool test where {name} stays quiet"


def test_model_alerts_have_runbooks_and_queries() -> None:
    from llmwatch.streams.alerting import QUERIES

    operators = (ROOT / "docs" / "operators.md").read_text()
    rules = {r.name for r in _model_window_rules()} | {
        "canary_failed",
        "canary_verdicts_stale",
        "canary_verdicts_missing",
    }
    assert rules == set(QUERIES)
    for rule in rules:
        assert f'<a id="{rule}"></a>' in operators, f"docs/operators.md has no anchor for {rule}"


def _model_window_rules() -> list[Any]:
    from llmwatch.streams.alerting import window_rules

    return window_rules(ttft_p95_ms=1, error_rate=1, pii_leak_rate=1, injection_success_rate=1, min_count=1)


ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_alertmanager_runs_in_compose_and_both_senders_point_at_it() -> None:
    services = compose()["services"]
    am = services["alertmanager"]
    assert am["image"].startswith("prom/alertmanager:")
    mounts = {m.split(":")[1]: m.split(":")[0] for m in am["volumes"]}
    config_flag = next(a for a in am["command"] if a.startswith("--config.file="))
    assert mounts[config_flag.split("=", 1)[1]] == "./deploy/alertmanager/alertmanager.yml"
    prometheus = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (target,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == "alertmanager:9093"
    judge_env = env_dict(services["judge"]["environment"])
    assert judge_env["LLMWATCH_ALERTS__ALERTMANAGER_URL"] == f"http://{target}"
    assert "alerter" in llmwatch_args_of_service(services["judge"])[-1]
    assert not any(
        "LLMWATCH_WORKER__ALERT_WEBHOOK" in k for s in services.values() for k in env_dict(s.get("environment"))
    )


def test_alertmanager_runs_in_k8s_and_both_senders_point_at_it() -> None:
    cm = by_kind("ConfigMap")["llmwatch-alertmanager"]
    assert cm["data"]["alertmanager.yml"] == ALERTMANAGER_CONFIG.read_text()
    service = by_kind("Service")["llmwatch-alertmanager"]
    port = service["spec"]["ports"][0]["port"]
    settings = by_kind("ConfigMap")["llmwatch-settings"]["data"]
    assert settings["LLMWATCH_ALERTS__ALERTMANAGER_URL"] == f"http://llmwatch-alertmanager:{port}"
    scrape = yaml.safe_load((PROMETHEUS / "kubernetes-scrape.yml").read_text())
    (target,) = scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == f"llmwatch-alertmanager.llmwatch.svc:{port}"


def test_alertmanager_config_inhibits_symptoms_by_canary_failed_and_has_a_null_receiver() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["null"] == {"name": "null"}
    routes = config["route"]["routes"]
    assert any(r["receiver"] == "null" for r in routes)
    assert any("deployment" in m for r in routes for m in r["matchers"])  # by deployment
    assert any("severity" in m for r in routes for m in r["matchers"])  # by severity
    (canary,) = [r for r in config["inhibit_rules"] if r["source_matchers"] == ['alertname = "canary_failed"']]
    for rule in _model_window_rules():
        assert rule.name in canary["target_matchers"][0]
    assert canary["equal"] == ["deployment", "model_version"]
    used = {r["receiver"] for r in routes} | {c["receiver"] for r in routes for c in r.get("routes", [])}
    assert used | {config["route"]["receiver"]} == set(receivers)


# ------------------------------------------------------------------------------------------------ Grafana
def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _datasources() -> dict[str, str]:
    path = ROOT / "deploy" / "compose" / "grafana" / "provisioning" / "datasources" / "llmwatch.yml"
    return {d["uid"]: d["type"] for d in yaml.safe_load(path.read_text())["datasources"]}


def clickhouse_queries() -> list[tuple[str, str]]:
    out = []
    for name, dashboard in dashboards().items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "grafana-clickhouse-datasource":
                    out.append((f"{name}: {panel['title']}", target["rawSql"]))
        for variable in dashboard["templating"]["list"]:
            if variable.get("datasource", {}).get("type") == "grafana-clickhouse-datasource":
                out.append((f"{name}: ${variable['name']}", variable["query"]["rawSql"]))
    return out


def test_dashboards_are_provisioned_with_known_datasources() -> None:
    boards = dashboards()
    assert {"llmwatch-canary.json", "llmwatch-system.json"} <= set(boards)
    datasources = _datasources()
    assert set(datasources.values()) == {"prometheus", "grafana-clickhouse-datasource"}
    uids = [b["uid"] for b in boards.values()]
    assert len(uids) == len(set(uids))
    types = set()
    for name, board in boards.items():
        ids = [p["id"] for p in _panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in _panels(board):
            for target in panel.get("targets", []):
                ds = target["datasource"]
                assert datasources.get(ds["uid"]) == ds["type"], f"{name}/{panel['title']}: datasource {ds}"
                types.add(ds["type"])
    assert types == set(datasources.values()), "dashboards read both ClickHouse and Prometheus"
    grafana = compose()["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in env_dict(grafana["environment"])["GF_INSTALL_PLUGINS"]
    home = env_dict(grafana["environment"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    folder = str(Path(home).parent)
    assert mounts[folder] == "./deploy/grafana" and (GRAFANA / Path(home).name).exists()


def test_dashboard_promql_references_real_metrics() -> None:
    count = 0
    for name, board in dashboards().items():
        for panel in _panels(board):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    check_promql(target["expr"], f"{name}/{panel['title']}")
                    count += 1
    assert count >= 10


def _tables_and_views() -> set[str]:
    names = set()
    for path in (ROOT / "sql" / "migrations").glob("*.up.sql"):
        names.update(re.findall(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS (\w+)", path.read_text()))
    return names


def test_dashboard_sql_reads_only_migrated_tables() -> None:
    tables = _tables_and_views()
    queries = clickhouse_queries()
    assert len(queries) >= 10
    for where, sql in queries:
        sources = {m for m in re.findall(r"\b(?:FROM|(?<!ARRAY )JOIN)\s+(\w+)", sql) if m.upper() != "SELECT"}
        assert sources and sources <= tables, f"{where}: unknown tables {sources - tables}"


def _render_grafana_sql(sql: str) -> str:
    """The ClickHouse plugin's macros and the dashboard variables, as the plugin would expand them."""
    sql = re.sub(r"\$__timeFilter\((\w+(?:\.\w+)?)\)", r"(\1 >= now() - INTERVAL 1 DAY AND \1 <= now())", sql)
    sql = re.sub(r"\$__timeInterval\((\w+(?:\.\w+)?)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)", sql)
    sql = sql.replace("${deployment}", "chat").replace("$deployment", "chat")
    assert "$" not in sql, f"unexpanded macro in {sql}"
    return sql


_RUN_SQL = """
import json, sys
from llmwatch.db.client import connect
from llmwatch.db.migrations import migrate
from llmwatch.settings import Settings

client = connect(Settings(data_dir=sys.argv[1], clickhouse="chdb://" + sys.argv[1] + "/clickhouse"))
failures = []
try:
    migrate(client)
    for where, sql in json.load(sys.stdin):
        try:
            client.query(sql)
        except Exception as e:
            failures.append(f"{where}: {e}")
finally:
    client.close()
print(json.dumps(failures))
"""


@pytest.mark.integration
def test_dashboard_sql_runs_on_the_real_schema(tmp_path: Path) -> None:
    """Every ClickHouse panel query (macros expanded) and every example of docs/analysts.md runs on chDB with
    the migrations applied."""
    pytest.importorskip("chdb")
    queries = [(where, _render_grafana_sql(sql)) for where, sql in clickhouse_queries()]
    for block in re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "analysts.md").read_text(), re.S):
        code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
        queries += [("docs/analysts.md", sql.strip()) for sql in code.split(";") if sql.strip()]
    result = subprocess.run(
        [sys.executable, "-c", _RUN_SQL, str(tmp_path)],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------ docs
DOCS = ["architecture.md", "operators.md", "analysts.md"]


def _commands_in_docs() -> Iterator[tuple[str, list[str]]]:
    for doc in DOCS:
        text = (ROOT / "docs" / doc).read_text()
        spans = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
        for span in spans:
            for line in span.splitlines():
                line = re.sub(r"(^|\s)#.*$", "", line)  # shell comments
                for match in re.finditer(r"(?<![\w/.-])(?<!-n )llmwatch((?: [a-z][a-z-]*)+)", line):
                    yield doc, match.group(1).split()


def test_docs_exist_and_name_only_real_commands() -> None:
    seen = 0
    for doc, words in _commands_in_docs():
        cmd: click.Command = cli
        for word in words:
            if not isinstance(cmd, click.Group):
                break
            sub = cmd.get_command(click.Context(cmd), word)
            assert sub is not None, f"docs/{doc}: `llmwatch {' '.join(words)}`: no command {word!r}"
            cmd = sub
        seen += 1
    assert seen >= 10


def test_analysts_guide_covers_every_table_and_ready_query() -> None:
    text = (ROOT / "docs" / "analysts.md").read_text()
    for table in _tables_and_views():
        if not table.endswith("_mv"):
            assert f"`{table}`" in text, f"docs/analysts.md does not mention table {table}"
    for path in (ROOT / "sql" / "queries").glob("*.sql"):
        assert f"`{path.stem}`" in text, f"docs/analysts.md does not mention ready query {path.stem}"


def test_operators_guide_explains_every_metric_and_alert() -> None:
    text = (ROOT / "docs" / "operators.md").read_text()
    for family in sorted(metric_families()):
        assert family in text, f"docs/operators.md does not explain {family}"
    for rule in _alert_rules():
        assert rule["alert"] in text, f"docs/operators.md does not explain alert {rule['alert']}"
