"""The serving switch against the real Label Studio: a job that loses its project lock right after Label Studio
was switched, and a switch Label Studio refuses, both end with Label Studio and the store naming one version
once the next job has reconciled them (``worker/publishing.py``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from beal_backend.labelstudio.client import LabelStudioClient, LabelStudioError
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import METADATA, ModelStore
from beal_backend.worker import publishing
from beal_backend.worker.locks import Lease, LockLost

from .helpers import CONFIG, LABELS, LS, make_project, rows

pytestmark = pytest.mark.e2e


class LostAt(Lease):
    """The project lock is found lost at the ``at``-th confirmed check (3: just before CURRENT is written)."""

    def __init__(self, at: int):
        self.at, self.checks = at, 0

    def check(self, confirm=False):
        self.checks += confirm
        if self.checks == self.at:
            raise LockLost("taken over by another job")


def _version(store: ModelStore, project: str, name: str) -> str:
    """A registry entry (publish reads only the scores passed in; reconcile only needs the version listed)."""
    (store.project_dir(project) / name).mkdir(parents=True)
    (store.project_dir(project) / name / METADATA).write_text(json.dumps({"promotion": {"promoted": True}}))
    return name


def test_label_studio_and_the_store_agree_after_a_lost_lock_or_a_refused_switch(label_studio, tmp_path):
    ls = LS(*label_studio)
    project, tasks = make_project(ls, rows(4), title="switch")
    client = LabelStudioClient(*label_studio, retries=0)
    store = ModelStore(tmp_path)
    rt = SimpleNamespace(store=store, preload=None)  # all of a runtime that publishing reads
    p, ids, schema = str(project), [t["id"] for t in tasks], parse_label_config(CONFIG)

    def scores(value: float, choice: str) -> dict:
        return {"tasks": {str(t): {"choices": [choice], "score": value + i / 100} for i, t in enumerate(ids)}}

    def shown() -> str:
        return ls("GET", f"/api/projects/{project}")["model_version"]

    v1, v2, v3 = (_version(store, p, f"beal-2026010{i}T000000000000Z-0000000{i}") for i in (1, 2, 3))
    publishing.publish(rt, client, p, v1, schema, scores(0.1, LABELS[0]), ids, Lease())
    assert store.current(p) == shown() == v1

    # the lock is lost after Label Studio switched to v2, before CURRENT: the next job finishes the switch
    with pytest.raises(LockLost):
        publishing.publish(rt, client, p, v2, schema, scores(0.5, LABELS[1]), ids, LostAt(3))
    assert (store.current(p), shown()) == (v1, v2) and store.switching(p) == {"to": v2, "from": v1}
    assert publishing.reconcile(rt, client, p, Lease()) == {"finished_switch_to": v2}
    assert store.current(p) == shown() == v2 and store.switching(p) is None
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 100})["tasks"]
    assert sorted(round(t["predictions_score"], 2) for t in listing) == [0.5, 0.51, 0.52, 0.53]  # v2's scores

    # Label Studio refuses the switch (it dropped every prediction: a choice not in the config): v2 stays
    with pytest.raises(LabelStudioError, match="400"):
        publishing.publish(rt, client, p, v3, schema, scores(0.9, "no-such-label"), ids, Lease())
    assert publishing.reconcile(rt, client, p, Lease()) == {"undid_switch_to": v3, "label_studio_shows": v2}
    assert store.current(p) == shown() == v2
    status, note = publishing.version_status(store, p, v3, store.current(p), store.metadata(p, v3))
    assert status == "unserved" and note.startswith("promoted, never served: switch failed (LabelStudioError")
