"""Container log files on a node: where Docker and the kubelet keep them, their rotations, what their path names.

Docker's json-file driver: `/var/lib/docker/containers/<id>/<id>-json.log`, rotated to `.1`, `.2`… (`.N.gz` with
`compress`), the highest number the oldest. The kubelet (containerd, CRI-O): `/var/log/pods/<namespace>_<pod>_<uid>/
<container>/<restart>.log`, rotated to `<restart>.log.<YYYYMMDD-HHMMSS>` and gzipped after the newest rotation;
a restarted container writes `<restart+1>.log`. Only containers whose namespace, pod or container name matches the
configured glob are read (LibreChat's, by default); Docker's paths name no container, so a Docker source reads
every container under the directory (or the container directories) it is given.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Final

from parsers.event import Attributes

DOCKER: Final = "docker"
CRI: Final = "cri"
DEFAULT_SELECT: Final = "*librechat*"
_DOCKER: Final = re.compile(r"^([0-9a-f]{64})-json\.log(?:\.(\d+))?(\.gz)?$")
_CRI: Final = re.compile(r"^(\d+)\.log(?:\.(\d{8}-\d{6}))?(\.gz)?$")
_CONTAINER_ID: Final = re.compile(r"[0-9a-f]{64}")
_POD_DIR: Final = re.compile(r"^([^_]+)_(.+)_([0-9a-fA-F-]{8,})$")
_LIVE: Final = 10**14 - 1  # sorts after every `YYYYMMDDhhmmss`


def classify(path: Path) -> tuple[str, int, bool] | None:
    """(family, order within the container, gz) of a container log file; None for any other file.

    The order puts a container's files oldest first: Docker's `.N` before `.N-1` before the live file; the
    kubelet's restarts in turn, each one's rotations by their time before its live file."""
    docker = _DOCKER.match(path.name)
    if docker:
        return DOCKER, -int(docker.group(2) or 0), bool(docker.group(3))
    cri = _CRI.match(path.name)
    if cri and _POD_DIR.match(path.parent.parent.name):
        stamp = int(cri.group(2).replace("-", "")) if cri.group(2) else _LIVE
        return CRI, int(cri.group(1)) * 10**14 + stamp, bool(cri.group(3))
    return None


def identity_name(name: str) -> str:
    """The name a container log file keeps through its rotations (`0.log`, `<id>-json.log`), for its identity."""
    for pattern in (_DOCKER, _CRI):
        match = pattern.match(name)
        if match:
            return name[: match.end(1)] + ("-json.log" if pattern is _DOCKER else ".log")
    return name


def attributes(path: Path, family: str) -> Attributes:
    """OpenTelemetry resource attributes the path names: `k8s.*` for the kubelet's files, `container.id` for Docker."""
    if family == DOCKER:
        match = _DOCKER.match(path.name)
        return {"container.id": match.group(1)} if match else {}
    pod = _POD_DIR.match(path.parent.parent.name)
    restart = _CRI.match(path.name)
    if family != CRI or pod is None or restart is None:
        return {}
    return {
        "k8s.namespace.name": pod.group(1),
        "k8s.pod.name": pod.group(2),
        "k8s.pod.uid": pod.group(3),
        "k8s.container.name": path.parent.name,
        "k8s.container.restart_count": int(restart.group(1)),
    }


def detect(root: Path) -> str:
    """`cri` for a directory of pod directories, `docker` for one of container directories (or one container's),
    else `files` (LibreChat's own)."""
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:
        return "files"
    for entry in entries:
        if _DOCKER.match(entry.name):
            return DOCKER
        if not _is_dir(entry):
            continue
        if _POD_DIR.match(entry.name):
            return CRI
        if _CONTAINER_ID.fullmatch(entry.name):
            return DOCKER
    return "files"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def container_dirs(root: Path, family: str, glob: str) -> list[Path]:
    """The directories holding the log files of the containers read under `root` (`root` itself for Docker's
    container directory given directly)."""
    out: list[Path] = []
    for path in _subdirs(root):
        if family == DOCKER:
            out.append(path)
            continue
        for container in _subdirs(path):
            if selected(container / "0.log", CRI, glob):
                out.append(container)
    return out


def _subdirs(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return sorted(Path(entry.path) for entry in entries if _is_dir(entry) and not entry.name.startswith("."))


def selected(path: Path, family: str, glob: str) -> bool:
    """Whether a kubelet container's namespace, pod or container name matches `glob` (Docker files: always)."""
    if family != CRI:
        return True
    pod = _POD_DIR.match(path.parent.parent.name)
    names = (pod.group(1), pod.group(2), path.parent.name) if pod else (path.parent.name,)
    return any(fnmatch.fnmatchcase(name, glob) for name in names)
