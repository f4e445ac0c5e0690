"""What a version writes to Label Studio beyond the client's single calls: its scores as predictions, and the
deletion of every other beal version's predictions once it serves (or once no version serves the config)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from beal_backend.labelstudio.client import LabelStudioClient, LabelStudioError
from beal_backend.labelstudio.label_config import LabelSchema

log = logging.getLogger(__name__)
VERSION_PREFIX = "beal-"  # every version this backend names (``store.versions.new_version_id``); others are not ours


def from_scores(schema: LabelSchema, entries: dict, task_ids: Iterable) -> list[dict]:
    """Label Studio predictions for ``task_ids`` from a version's score entries (``scores.json`` ``tasks``)."""
    return [
        {"task": int(t), "result": schema.result(entries[str(t)]["choices"]), "score": entries[str(t)]["score"]}
        for t in task_ids
    ]


def delete_stale(client: LabelStudioClient, project: str, version: str) -> dict:
    """Delete the predictions of every beal version but ``version``. Label Studio deletes them one by one (2.7 ms
    each here), so this is the slowest step of a large project's round; it runs once the new version serves, and a
    failure leaves the versions to the next round instead of failing this one."""
    pid, removed, left = int(project), [], []
    try:
        versions = client.model_versions(pid)
    except LabelStudioError as e:
        log.warning("project %s: model versions not listed (%s); the next round deletes the stale ones", project, e)
        return {"removed_versions": [], "versions_not_listed": str(e)[:200]}  # which are stale is unknown
    stale = {v: n for v, n in versions.items() if v != version and v.startswith(VERSION_PREFIX)}
    for v, n in stale.items():
        try:
            client.delete_model_version(pid, v, n)
            removed.append(v)
        except LabelStudioError as e:
            log.warning("project %s: predictions of %s not deleted (%s); the next round retries", project, v, e)
            left.append(v)
    return {"removed_versions": removed, **({"stale_versions_left": left} if left else {})}
