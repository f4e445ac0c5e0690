"""Issue #15 against a real Label Studio 1.23.2: a single-choice project and a dialogue (<Paragraphs>)
project each complete a real round with sensible predictions; annotations without a usable label are
left out, counted, and shown on /jobs and /status; reordered choices keep /predict answering."""

from __future__ import annotations

import pytest
import requests

from beal_backend.store.versions import ModelStore
from beal_backend.worker import examples

from .helpers import LABELS, LS, listed_predictions, rows, wait_for_version, wait_until

pytestmark = pytest.mark.e2e


def single_config(labels):
    return (
        '<View><Text name="text" value="$text"/><Choices name="emotion" toName="text" choice="single-radio">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )


PARAGRAPHS = (
    '<View><Paragraphs name="dialogue" value="$dialogue" layout="dialogue"/>'
    '<Choices name="emotion" toName="dialogue" choice="multiple">'
    + "".join(f'<Choice value="{c}"/>' for c in LABELS)
    + "</Choices></View>"
)


def annotate(ls, task_id, choices, to_name):
    result = (
        []
        if choices is None
        else [{"from_name": "emotion", "to_name": to_name, "type": "choices", "value": {"choices": choices}}]
    )
    return ls("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})


def project_with(ls, config, items, title):
    project = ls("POST", "/api/projects", json={"title": title, "label_config": config})["id"]
    ls("POST", f"/api/projects/{project}/import", json=items)
    return project, ls.tasks(project)


def pool_predictions(ls, project, annotated):
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    return {t["id"]: t["predictions"] for t in listing if t["id"] not in annotated}


def test_single_choice_round_predicts_exactly_one_choice(label_studio, backend_factory):
    ls = LS(*label_studio)
    b = backend_factory(REDIS_URL="", TRAIN_EVERY=10, EPOCHS=3, MC_PASSES=4)
    data = [{"text": r["text"], "label": r["labels"][0]} for r in rows(24, offset=200)]
    project, tasks = project_with(ls, single_config(LABELS), [{"text": r["text"]} for r in data], "single")
    ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
    for task, row in zip(tasks[:8], data[:8]):
        annotate(ls, task["id"], [row["label"]], "text")
    annotate(ls, tasks[8]["id"], None, "text")  # an empty result: not a negative example
    annotate(ls, tasks[9]["id"], ["not-a-label"], "text")  # a choice the config does not have
    version = wait_for_version(b, project)

    preds = pool_predictions(ls, project, {t["id"] for t in tasks[:10]})
    assert len(preds) == 14
    for task_id, p in preds.items():
        assert [x["model_version"] for x in p] == [version]
        choices = p[0]["result"][0]["value"]["choices"]
        assert len(choices) == 1 and choices[0] in LABELS, (task_id, choices)  # exactly one, every time
        assert 0.0 < p[0]["score"] <= 1.0
    meta = ModelStore(b.env["MODEL_DIR"]).metadata(str(project), version)
    assert meta["hparams"]["single_label"] is True and meta["n_annotations"] == 8

    last = requests.get(b.url + "/jobs", timeout=5).json()[str(project)]["current_job"]
    assert last["skipped"] == {examples.NO_CHOICE: 1, examples.UNKNOWN_ONLY: 1}
    page = requests.get(b.url + "/status", timeout=10).text
    assert (
        f"<b>1</b> {examples.NO_CHOICE}" in page
        and "<b>1</b> annotation whose choices are not in the label config" in page
    )

    # the same choices in another order: not a new label set (no round; the version keeps its predictions), and
    # a task imported now is scored with the current version (by the import's job), exactly one choice
    ls("PATCH", f"/api/projects/{project}", json={"label_config": single_config(list(reversed(LABELS)))})
    ls("POST", f"/api/projects/{project}/import", json=[{"text": "thank you so much, this made my day"}])
    new = max(t["id"] for t in ls.tasks(project))
    fresh = wait_until(lambda: listed_predictions(ls, project, new), 120, "the imported task's prediction")
    assert [p["model_version"] for p in fresh] == [version] and len(fresh[0]["result"][0]["value"]["choices"]) == 1
    assert requests.get(b.url + "/jobs", timeout=5).json()[str(project)]["model_version"] == version
    assert {v for v in ls("GET", f"/api/projects/{project}/model-versions/") if v.startswith("beal-")} == {version}


def test_dialogue_project_trains_on_joined_paragraphs(label_studio, backend_factory):
    ls = LS(*label_studio)
    b = backend_factory(REDIS_URL="", TRAIN_EVERY=10, EPOCHS=2, MC_PASSES=4)
    data = rows(20, offset=230)  # the committed sample has 288 usable rows
    items = [
        {"dialogue": [{"author": "Ann", "text": "what happened?"}, {"author": "Bob", "text": r["text"]}]} for r in data
    ]
    project, tasks = project_with(ls, PARAGRAPHS, items, "dialogue")
    ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
    for task, row in zip(tasks[:10], data[:10]):
        annotate(ls, task["id"], row["labels"], "dialogue")
    version = wait_for_version(b, project)

    job = requests.get(b.url + "/jobs", timeout=5).json()[str(project)]["current_job"]
    assert job["outcome"] == "trained" and job["n_annotations"] == 10 and job["skipped"] == {}
    preds = pool_predictions(ls, project, {t["id"] for t in tasks[:10]})
    assert len(preds) == 10
    for p in preds.values():
        assert [x["model_version"] for x in p] == [version] and 0.0 <= p[0]["score"] <= 1.0
        assert all(c in LABELS for r in p[0]["result"] for c in r["value"]["choices"])
    assert len({round(p[0]["score"], 9) for p in preds.values()}) > 1  # scores tell the dialogues apart
