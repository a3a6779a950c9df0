"""deploy/ (issue 16): the Kubernetes manifests validate against a current Kubernetes
(kubernetes-validate, with its bundled schemas, offline), every setting is an
OUTLIERS_* variable naming a real flag of its command, and the Docker runtime stage
installs a package for every shared library the binary links.

Run:  .venv/bin/python -m pytest Tests/interop/test_deploy.py
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, require_binary

KUBERNETES = REPO / "deploy" / "kubernetes"
DOCKER = REPO / "deploy" / "docker"
KUBERNETES_VERSION = "1.37.0"  # the newest this kubernetes-validate knows
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))


def documents():
    docs = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert len(docs) >= 8, [d["kind"] for d in docs]
    return docs


def flags_of(command):
    """The long flags `outliers COMMAND --help` lists."""
    help_text = subprocess.run([str(require_binary()), command, "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    return {name for name in re.findall(r"--([a-z0-9-]+)", help_text)}


def variable_flag(name):
    assert name.startswith("OUTLIERS_"), name
    return name[len("OUTLIERS_"):].lower().replace("_", "-")


def test_every_manifest_validates_against_kubernetes():
    assert MANIFESTS, "no manifests in deploy/kubernetes"
    validate = Path(sys.executable).with_name("kubernetes-validate")
    assert validate.exists(), "kubernetes-validate is missing: pip install -r Tests/interop/requirements.txt"
    result = subprocess.run([str(validate), "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                             *map(str, MANIFESTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # One "passed" line per document, none skipped.
    assert result.stdout.count("passed for resource") == len(documents()), result.stdout


def test_the_validator_refuses_a_broken_manifest(tmp_path):
    """Not vacuous: a wrong type and an unknown field fail the same validation."""
    validate = Path(sys.executable).with_name("kubernetes-validate")
    broken = (KUBERNETES / "backend.yaml").read_text().replace("replicas: 3", "replicas: three", 1)
    unknown = (KUBERNETES / "gateway.yaml").read_text().replace("periodSeconds: 5", "periodSecond: 5", 1)
    for name, text in (("broken.yaml", broken), ("unknown.yaml", unknown)):
        path = tmp_path / name
        path.write_text(text)
        result = subprocess.run([str(validate), "--strict", "--kubernetes-version", KUBERNETES_VERSION, str(path)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0, (name, result.stdout)


def test_the_manifests_hold_what_docs_deploy_md_describes():
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in documents())
    assert kinds == sorted([
        "Deployment/outliers-backend", "Service/outliers-backend", "Deployment/outliers-gateway",
        "Service/outliers-gateway", "HorizontalPodAutoscaler/outliers-backend",
        "HorizontalPodAutoscaler/outliers-gateway", "PodDisruptionBudget/outliers-backend",
        "PodDisruptionBudget/outliers-gateway"]), kinds
    by = {f"{d['kind']}/{d['metadata']['name']}": d for d in documents()}
    assert by["Service/outliers-backend"]["spec"]["clusterIP"] == "None"  # headless: every pod's address
    backend = by["Deployment/outliers-backend"]["spec"]["template"]["spec"]["containers"][0]
    assert backend["readinessProbe"]["grpc"]["port"] == 9999 and backend["livenessProbe"]["grpc"]["port"] == 9999
    gateway = by["Deployment/outliers-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "OUTLIERS_DRAIN_DELAY", "value": "5s"} in gateway["env"]
    for container in (backend, gateway):
        assert container["resources"]["requests"] and container["resources"]["limits"]


@pytest.mark.parametrize("name", ["outliers-backend", "outliers-gateway"])
def test_every_setting_is_an_outliers_variable_of_a_real_flag(name):
    deployment = next(d for d in documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = container["args"][0]
    assert container["args"] == [command], "settings go through OUTLIERS_* variables, not flags"
    flags = flags_of(command)
    for variable in container["env"]:
        assert variable_flag(variable["name"]) in flags, (variable["name"], command, sorted(flags))
    # The port the process listens on is the one the container declares.
    env = {v["name"]: v["value"] for v in container["env"]}
    ports = [p["containerPort"] for p in container["ports"]]
    assert int(env["OUTLIERS_PORT"]) in ports


def test_compose_runs_one_gateway_and_three_backends():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    backends = [name for name, s in services.items() if s["command"] == ["backend"]]
    assert len(backends) == 3 and services["gateway"]["command"] == ["gateway"]
    assert services["gateway"]["environment"]["OUTLIERS_BACKEND"].split(",") == [f"{b}:9999" for b in backends]
    for service in services.values():
        command = service["command"][0]
        flags = flags_of(command)
        for variable in service["environment"]:
            assert variable_flag(variable) in flags, (variable, command)


def linked_packages(binary):
    """The Debian packages of the shared libraries `ldd` lists, and the Swift runtime's."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30, check=True).stdout
    packages, swift = set(), []
    for line in out.splitlines():
        match = re.match(r"\s*(\S+) => (\S+)", line)
        if not match:
            continue
        path = match.group(2)
        if "/swift/" in path:
            swift.append(match.group(1))
            continue
        for candidate in (path, "/usr" + path):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            pytest.fail(f"no Debian package owns {path}")
    return packages, swift


def test_the_runtime_stage_installs_every_library_the_binary_links():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1]
    install = re.search(r"apt-get install[^\n]*\n((?:.*\\\n)*?.*&& rm)", runtime, re.S)
    assert install, "no apt-get install in the runtime stage"
    listed = set(re.findall(r"\b(lib[a-z0-9.+-]+|zlib1g|ca-certificates)\b", install.group(1)))
    packages, swift = linked_packages(require_binary())
    assert packages - listed == set(), f"the runtime stage lacks {sorted(packages - listed)}"
    # The Swift runtime is copied from the build stage: what ldd resolves there.
    assert swift and "/usr/lib/swift" in dockerfile and "COPY --from=build /out/swift/" in runtime
    assert "FROM swift:6.3-bookworm AS build" in dockerfile and "FROM debian:bookworm-slim AS runtime" in dockerfile
