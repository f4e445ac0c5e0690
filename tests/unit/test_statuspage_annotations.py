"""Issue #15 items 2, 4, 5: a round's skip reasons and annotation counts reach the status page."""

from __future__ import annotations

from beal_backend.service import statuspage
from beal_backend.worker import examples


def project(last_job, current_job=None):
    return {
        "project": "3",
        "current_version": None,
        "pending": False,
        "current_job": current_job,
        "last_job": last_job,
        "versions": [],
        "label_counts": {},
        "ec_scores": [],
        "job_log": [],
    }


def test_skipped_round_shows_its_reason_and_counts():
    last = {
        "id": "j1",
        "state": "finished",
        "stage": "done",
        "outcome": "skipped",
        "reason": "0 labeled tasks; need 2 (left out: 5 task without text)",
        "skipped": {examples.NO_TEXT: 5, examples.NO_CHOICE: 2},
        "notes": {examples.CONFLICT_GT: 1},
    }
    html = statuspage.render([project(last)])
    assert "0 labeled tasks; need 2 (left out: 5 task without text)" in html
    assert "<b>5</b> task without text" in html
    assert "<b>2</b> annotation without a choice (empty result)" in html
    assert "<b>1</b> tasks with disagreeing annotations (ground truth used)" in html


def test_counts_of_the_last_round_stay_visible_while_the_next_one_runs():
    last = {"id": "j1", "state": "finished", "skipped": {examples.UNKNOWN_ONLY: 4}}
    html = statuspage.render([project(last, current_job={"id": "j2", "state": "started", "stage": "training"})])
    assert "<b>4</b> annotation whose choices are not in the label config" in html


def test_no_counts_no_list():
    assert 'class="skips"' not in statuspage.render([project({"id": "j1", "state": "finished", "skipped": {}})])
