"""``bench_round.py --io``: a round's Label Studio traffic on a real Label Studio (its own project of short texts):
reading the tasks the v0.2 way vs ``LabelStudioClient.tasks``, pushing predictions in requests of ``--chunk`` vs
one request, with Label Studio's prediction-import flag off and on, and deleting a version."""

from __future__ import annotations

import time

from _common import choices_config, machine

from beal_backend.labelstudio.client import PAGE_SIZE, LabelStudioClient
from tests.e2e.helpers import LS
from tests.e2e.label_studio import LabelStudio

FLAG = "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short"
RESULT = [{"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": ["b"]}}]  # --io's one label


class Server(LS):
    """``--io``'s Label Studio: projects of short texts, pushes, reads and deletes, each timed by the caller."""

    def __init__(self, url: str, key: str):
        super().__init__(url, key, timeout=3600)

    def project(self, n: int, annotated: int = 0) -> tuple[int, list[int]]:
        pid = self("POST", "/api/projects", json={"title": "bench push", "label_config": choices_config(["a", "b"])})[
            "id"
        ]
        tasks: list[dict] = [{"text": f"text number {i} " * 5} for i in range(n)]
        tasks = [{"data": t, "annotations": [{"result": RESULT}]} if i < annotated else t for i, t in enumerate(tasks)]
        self("POST", f"/api/projects/{pid}/import", json=tasks)
        ids, page = [], 1
        while True:  # ids only: Label Studio answers 404 past the last page
            r = self.s.get(
                self.url + "/api/tasks/",
                params={"project": pid, "fields": "task_only", "include": "id", "page": page, "page_size": 5000},
            )
            if r.status_code == 404:
                return pid, ids
            ids += [t["id"] for t in r.json()["tasks"]]
            page += 1

    def push(self, pid: int, ids: list[int], version: str, chunk: int) -> float:
        preds = [{"task": t, "model_version": version, "score": 0.5, "result": RESULT} for t in ids]
        t0 = time.perf_counter()
        for s in range(0, len(preds), chunk):
            self("POST", f"/api/projects/{pid}/import/predictions", json=preds[s : s + chunk])
        return time.perf_counter() - t0

    def read_all_in_full(self, pid: int) -> tuple[int, int]:
        """v0.2's read: every task with fields=all, pages of PAGE_SIZE. Returns (tasks, annotations)."""
        tasks, page = [], 1
        while True:
            r = self.s.get(
                self.url + "/api/tasks/", params={"project": pid, "fields": "all", "page": page, "page_size": PAGE_SIZE}
            )
            if r.status_code == 404:
                return len(tasks), sum(len(t["annotations"]) for t in tasks)
            tasks += r.json()["tasks"]
            page += 1

    def delete(self, pid: int, version: str) -> float:
        t0 = time.perf_counter()
        self("DELETE", f"/api/projects/{pid}/model-versions/", json={"model_version": version})
        return time.perf_counter() - t0


def pushes(server: Server, n: int, chunk: int, label: str) -> list[float]:
    pid, ids = server.project(n)
    times = [server.push(pid, ids, v, chunk) for v in ("v1", "v2")]
    for v, t in zip(("v1 (empty table)", "v2 (next to v1)"), times):
        print(f"[measured] {label}: {n} predictions {v}: {t:.1f} s = {n / t:.0f} predictions/s", flush=True)
    if label.startswith("one request"):
        print(f"[measured] delete a version of {n} predictions: {server.delete(pid, 'v1'):.1f} s", flush=True)
    return times


def reads(server: Server, key: str, n: int, annotated: int) -> None:
    """Both reads of one project holding ``annotated`` annotations and two versions of predictions, interleaved
    twice; the minimum of each. Both must see the same tasks and annotations."""
    pid, ids = server.project(n, annotated)
    for v in ("v1", "v2"):
        server.push(pid, ids, v, n)
    client = LabelStudioClient(server.url, key, timeout=3600)
    full, split = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        seen_full = server.read_all_in_full(pid)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = client.tasks(pid)
        split.append(time.perf_counter() - t0)
        assert seen_full == (len(got), sum(len(t.annotations) for t in got)) == (n, annotated), seen_full
    print(
        f"[measured] read {n} tasks ({annotated} annotated, 2 versions of predictions): every task in full "
        f"{min(full):.1f} s (v0.2), annotated in full + id/data of all {min(split):.1f} s (LabelStudioClient.tasks)"
    )
    print(f"[ratio] reading the tasks: {min(full) / min(split):.1f}x faster", flush=True)


def label_studio_io(args) -> int:
    """``--io``: reads, pushes and a delete on Label Studio with its import flag off, then the push with it on."""
    print(f"# bench_round --io  {machine()}")
    results = {}
    for flag in (False, True):
        ls = LabelStudio(instance=args.ls_instance, extra_env={FLAG: "true"} if flag else None)
        url, key = ls.start()
        server = Server(url, key)
        try:
            if not flag:
                reads(server, key, args.tasks, args.annotations)
            tag = f"flag {'on' if flag else 'off'}"
            results[(flag, "chunked")] = pushes(server, args.tasks, args.chunk, f"requests of {args.chunk}, {tag}")
            if not flag:
                results[(flag, "one")] = pushes(server, args.tasks, args.tasks, f"one request, {tag}")
        finally:
            ls.stop()
    for i, v in enumerate(("v1", "v2")):
        chunked, one, flagged = (
            results[(False, "chunked")][i],
            results[(False, "one")][i],
            results[(True, "chunked")][i],
        )
        print(
            f"[ratio] {v}: requests of {args.chunk} take {chunked / one:.1f}x the time of one request "
            f"(flag off); with the flag on they take {flagged / one:.2f}x"
        )
    return 0
