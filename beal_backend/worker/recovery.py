"""Owed work survives a restart of the embedded service. Embedded mode keeps its annotation counts, idle timers and
job records in memory, so a crash, a kill -9 or an ordinary restart would forget annotations no round has trained
yet. On start, each project the store knows is compared with Label Studio: a round is scheduled where the labeled
tasks differ from what the newest version was trained on (its ``trained_on`` fingerprint). A round the restart
interrupted left no version, so it is redone the same way. (With Redis, counts and jobs outlive any process.)"""

from __future__ import annotations

import logging
import threading
import time

from beal_backend.worker import triggers
from beal_backend.worker.examples import read_project
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)


def owes_a_round(rt: Runtime, project: str) -> bool:
    """Whether Label Studio holds labeled tasks that no stored version of ``project`` was trained on."""
    s = rt.project_settings(project)
    ex = read_project(rt.client(project), project, s.max_text_chars).examples
    if len(ex.texts) < s.min_annotations:
        return False  # a round would only say so
    versions = rt.store.versions(project)
    if not versions:
        return True
    meta = rt.store.metadata(project, versions[-1])  # rejected or not: that round did read them
    if "trained_on" not in meta:  # written before versions recorded it
        return meta.get("n_annotations") != len(ex.texts)
    return meta["trained_on"] != ex.fingerprint()


def resume_owed_rounds(rt: Runtime, waits: list[int]) -> dict[str, dict]:
    """Enqueue a round for every known project that owes one (``rt`` with a queue). A project
    whose Label Studio cannot be asked now is asked again after each of ``waits`` (s). Returns what each got."""
    todo, done = rt.store.projects(), {}
    for wait in [0, *waits]:
        time.sleep(wait)
        left = []
        for project in todo:
            try:
                done[project] = triggers.enqueue_round(rt, project) if owes_a_round(rt, project) else {}
            except Exception as e:
                log.warning("project %s: could not check for untrained annotations (%s); trying again", project, e)
                left.append(project)
        todo = left
        if not todo:
            break
    for project, answer in done.items():
        if answer:
            log.info("project %s: annotations no version was trained on: round %s", project, answer)
    return done


def resume_in_background(rt: Runtime) -> threading.Thread:
    """Start ``resume_owed_rounds`` without delaying the service's start (Label Studio may answer slowly)."""
    thread = threading.Thread(
        target=resume_owed_rounds, args=(rt, rt.settings.round_retries), name="beal-recovery", daemon=True
    )
    thread.start()
    return thread
