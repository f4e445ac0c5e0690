"""The compose stack (Redis, API, worker; docker/compose.yaml) built from this tree and run against a real
Label Studio on the host: one real round through the containers, then the hardening and a clean stop.

Label Studio (listening on all addresses) reaches the API through its published port on 127.0.0.1; the
containers reach Label Studio through the engine's host alias. The first run builds the images (a few
minutes cold; later runs reuse the layer cache).
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest
import requests

from ..ports import free_port
from .containers import ROOT, find_engine, has_nvidia_gpu
from .helpers import LS, make_project, rows, wait_until
from .label_studio import LabelStudio

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.slow]
COMPOSE = ROOT / "docker" / "compose.yaml"


@pytest.fixture(scope="module")
def engine():
    try:
        return find_engine()
    except RuntimeError as e:
        problem = str(e)
    pytest.fail(problem, pytrace=False)  # outside the except: one line, no chained traceback


@pytest.fixture(scope="module")
def host_label_studio():
    instance = os.environ.get("BEAL_TEST_LS_INSTANCE", "beal-e2e") + "-containers"
    server = LabelStudio(instance=instance, bind="0.0.0.0")  # containers come in from their network
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def stack(engine, host_label_studio, tmp_path_factory):
    """The stack up, under a project name of its own; torn down with its volumes afterwards."""
    ls_url, token = host_label_studio
    port = free_port()
    project = f"beal-test-{port}"
    files = [COMPOSE]
    if engine.kind == "docker":  # container-engine drops the GPU reservation itself, and knows its host alias
        override = tmp_path_factory.mktemp("compose") / "test.yaml"
        override.write_text(
            "services:\n"
            + "".join(f"  {s}:\n    extra_hosts: ['host.docker.internal:host-gateway']\n" for s in ("api", "worker"))
        )
        files.append(override)
        if not has_nvidia_gpu():
            files.append(ROOT / "docker" / "cpu.yaml")
    env = {
        **os.environ,
        "BEAL_PORT": str(port),
        "LABEL_STUDIO_URL": ls_url.replace("127.0.0.1", engine.host_alias),
        "LABEL_STUDIO_API_KEY": token,
        "TRAIN_EVERY": "10",
        "TRAIN_IDLE_SECONDS": "5",  # the end of a burst: test_one_round_through_the_containers' second round
        "EPOCHS": "2",
        "MIN_STEPS": "0",
        "MC_PASSES": "8",
        "MC_SCOPE": "full",
        "DEVICE": "auto",
    }
    try:
        engine.compose(files, project, "up", "-d", "--build", env=env, timeout=1800)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(url + "/health"), 180, "the API's /health through the published port")
        yield {"url": url, "project": project, "ls": (ls_url, token)}
    finally:
        with contextlib.suppress(Exception):  # shown by pytest when a test of this module failed
            print(engine.compose(files, project, "logs", env=env, timeout=120).stdout[-20000:])
        engine.compose(files, project, "down", "-v", "-t", "10", env=env, timeout=300)


def _get(url):
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False


def test_one_round_through_the_containers(stack):
    url = stack["url"]
    assert requests.get(url + "/health", timeout=5).json()["queue"] == "redis"
    ls = LS(*stack["ls"])
    data = rows(14)
    project, tasks = make_project(ls, data, title="beal containers")
    # Label Studio (on the host) connects to the API's published port: /health + /setup
    ls("POST", "/api/ml", json={"project": project, "url": url, "title": "beal"})
    for t, row in zip(tasks[:10], data[:10]):  # the 10th webhook (TRAIN_EVERY) enqueues a job in Redis
        ls.annotate(t["id"], row["labels"])

    def trained():
        st = requests.get(url + "/jobs", timeout=5).json().get(str(project), {})
        job = st.get("current_job") or {}
        assert job.get("state") != "failed", job.get("error")
        return st["model_version"] if job.get("state") == "finished" and not st["pending"] else None

    version = wait_until(trained, 600, "a model trained by the worker container")
    # the worker wrote the version to the shared volume: the API container reads it from there
    versions = requests.get(f"{url}/projects/{project}/versions", timeout=5).json()
    assert [v["status"] for v in versions["versions"] if v["version"] == version] == ["current"], versions
    # predictions pushed by the worker to Label Studio (through the host alias) for the 4 unlabeled tasks
    listed = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 100})["tasks"]
    unlabeled = [t for t in listed if not t["annotations"]]
    assert len(unlabeled) == 4 and all(t["predictions_score"] is not None for t in unlabeled), unlabeled
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
    status = requests.get(url + "/status", timeout=10)
    assert status.status_code == 200 and version in status.text
    metrics = requests.get(url + "/metrics", timeout=10).text
    assert f'beal_model_info{{project="{project}",version="{version}"}} 1.0' in metrics

    # two more annotations, fewer than TRAIN_EVERY: 5 s after the last, the idle check (a delayed rq job that
    # the worker container's scheduler starts) enqueues the round that trains on them
    for t, row in zip(tasks[10:12], data[10:12]):
        ls.annotate(t["id"], row["labels"])
    second = wait_until(lambda: (v := trained()) != version and v, 600, "the idle round in the worker container")
    versions = requests.get(f"{url}/projects/{project}/versions", timeout=5).json()["versions"]
    assert [v["n_annotations"] for v in versions if v["version"] == second] == [12], versions


@pytest.mark.parametrize("service", ["api", "worker"])
def test_non_root_on_a_read_only_root_filesystem(engine, stack, service):
    c = engine.container(stack["project"], service)
    assert engine.run("exec", c, "id", "-u").stdout.strip() == "10001"
    probe = (
        "import sys\nfor d in sys.argv[1:]:\n"
        "    try: open(d + '/probe', 'w').close(); print(d, 'rw')\n    except OSError: print(d, 'ro')"
    )
    out = engine.run("exec", c, "python", "-c", probe, "/app", "/home/beal", "/tmp", "/data/model_store").stdout.split()
    assert out == ["/app", "ro", "/home/beal", "ro", "/tmp", "rw", "/data/model_store", "rw"]


@pytest.mark.parametrize("service", ["redis", "api", "worker"])
def test_health_check_passes(engine, stack, service):
    """The engine's own check command (Compose's `healthcheck`), run by hand: podman without systemd never
    schedules it."""
    c = engine.container(stack["project"], service)
    test = engine.inspect(c)["Config"]["Healthcheck"]["Test"]
    cmd = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    assert engine.run("exec", c, *cmd, check=False).returncode == 0, test


@pytest.mark.parametrize("service", ["worker", "api"])
def test_sigterm_stops_cleanly_within_10_s(engine, stack, service):
    """`stop` sends SIGTERM and SIGKILLs after 10 s: gunicorn and the rq worker must exit by themselves."""
    c = engine.container(stack["project"], service)
    start = time.monotonic()
    engine.run("stop", "-t", "10", c, timeout=60)
    took = time.monotonic() - start
    assert took < 9.5 and engine.inspect(c)["State"]["ExitCode"] == 0, (took, engine.inspect(c)["State"])
