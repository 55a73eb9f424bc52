"""deploy/kubernetes: the manifests are valid Kubernetes objects (schema-checked by kubernetes-validate, strict:
no unknown fields) and say what the README promises; the ConfigMap is a configuration logtail accepts."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from logtail.config import load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
VERSIONS = ("1.29.0", "1.37.0")  # the oldest Kubernetes still in wide use, and the newest schemas shipped


def documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(DEPLOY.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def kind(name: str) -> dict[str, Any]:
    [doc] = [doc for doc in documents() if doc["kind"] == name]
    return doc


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_passes_the_schema(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_mistake() -> None:
    daemonset = kind("DaemonSet")
    daemonset["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = ["health"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, VERSIONS[-1], strict=True)
    daemonset = kind("DaemonSet")
    daemonset["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # misspelt: strict refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, VERSIONS[-1], strict=True)


def test_the_daemonset_reads_pods_read_only_as_non_root_and_keeps_its_state() -> None:
    pod = kind("DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/log/pods"]["readOnly"] is True
    assert volumes[mounts["/var/log/pods"]["name"]]["hostPath"]["path"] == "/var/log/pods"
    assert "hostPath" in volumes[mounts["/var/lib/logtail"]["name"]]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["supplementalGroups"] == [0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}[container["livenessProbe"]["httpGet"]["port"]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LOGTAIL_SELF_HEALTH_ADDRESS"] == f"$(POD_IP):{port}"
    names = [e["name"] for e in container["env"]]
    for i, entry in enumerate(container["env"]):  # `$(NAME)` only expands variables defined before it
        for used in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
            assert used in names[:i], entry


def test_the_configmap_is_a_configuration_logtail_accepts(tmp_path: Path) -> None:
    pod = kind("DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "config")["mountPath"]
    assert container["args"] == ["run", "--config", f"{config_mount}/logtail.toml"]
    path = tmp_path / "logtail.toml"
    path.write_text(kind("ConfigMap")["data"]["logtail.toml"])
    config = load_config(path, env={"LOGTAIL_SELF_HEALTH_ADDRESS": "10.1.2.3:9464"})
    assert (str(config.source.logs_dir), config.source.kind, config.source.containers) == (
        "/var/log/pods",
        "cri",
        "*librechat*",
    )
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(config.source.state_dir) in mounts
    assert config.self.health_address == "10.1.2.3:9464"


def test_the_sidecar_note_holds_a_valid_pod() -> None:
    note = (DEPLOY / "sidecar.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", note, re.S)
    spec = yaml.safe_load(textwrap.dedent(block))
    spec["containers"][0]["image"] = "librechat/librechat"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "librechat"}, "spec": spec}
    kubernetes_validate.validate(pod, VERSIONS[-1], strict=True)
    logtail = spec["containers"][1]
    assert next(m for m in logtail["volumeMounts"] if m["mountPath"] == "/app/logs")["readOnly"] is True
