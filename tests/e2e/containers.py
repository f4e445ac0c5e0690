"""The container engine the container test drives: Docker with Compose where the machine has a working one,
else ``container-engine`` (rootful podman + podman-compose with local stand-in base images; its set-up is
cached on the machine), found as ``BEAL_CONTAINER_ENGINE``, on PATH, or in ``../shared/tools``.

Only engine-neutral commands are used: containers are found by their Compose labels (podman-compose and
docker compose name them differently), and health checks are run by the test itself (podman without
systemd stores but never schedules them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    "no container engine: install Docker Engine with the Compose plugin (https://docs.docker.com/engine/install/), "
    "or set BEAL_CONTAINER_ENGINE to the container-engine tool"
)


@dataclass
class Engine:
    cli: list[str]  # runs engine commands: ps, inspect, exec, stop
    compose_cli: list[str]  # runs compose sub-commands
    host_alias: str  # how a container reaches the host
    kind: str  # "docker" or "container-engine"

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        out = subprocess.run([*self.cli, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
        if check and out.returncode:
            raise RuntimeError(f"{' '.join(args[:3])} failed ({out.returncode}): {out.stderr[-3000:]}")
        return out

    def compose(
        self, files: list[Path], project: str, *args: str, env: dict, timeout: float
    ) -> subprocess.CompletedProcess:
        cmd = [*self.compose_cli, *(a for f in files for a in ("-f", str(f))), "-p", project, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
        if out.returncode:
            raise RuntimeError(
                f"compose {' '.join(args)} failed ({out.returncode}):\n{(out.stdout + out.stderr)[-5000:]}"
            )
        return out

    def container(self, project: str, service: str) -> str:
        out = self.run(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).stdout.split()
        assert len(out) == 1, f"expected one {service} container of {project}, found {out}"
        return out[0]

    def inspect(self, container: str) -> dict:
        return json.loads(self.run("inspect", container).stdout)[0]


def _docker() -> Engine | None:
    exe = shutil.which("docker")
    if exe is None:
        return None
    ok = lambda *a: subprocess.run([exe, *a], capture_output=True, timeout=30).returncode == 0  # noqa: E731
    if not (ok("info") and ok("compose", "version")):  # a client without a daemon, or no Compose plugin
        return None
    return Engine([exe], [exe, "compose"], "host.docker.internal", "docker")


def _container_engine() -> Engine | None:
    candidates = [
        os.environ.get("BEAL_CONTAINER_ENGINE"),
        shutil.which("container-engine"),
        str(ROOT.parent / "shared" / "tools" / "container-engine"),
    ]
    exe = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if exe is None:
        return None
    out = subprocess.run([exe, "setup"], capture_output=True, text=True, timeout=1800)  # idempotent, cached
    if out.returncode:
        raise RuntimeError(f"{exe} setup failed: {out.stderr[-3000:]}")
    return Engine([exe, "podman"], [exe, "compose"], "host.containers.internal", "container-engine")


def find_engine() -> Engine:
    engine = _docker() or _container_engine()
    if engine is None:
        raise RuntimeError(INSTALL_HINT)
    return engine


def has_nvidia_gpu() -> bool:
    return (
        shutil.which("nvidia-smi") is not None
        and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    )
