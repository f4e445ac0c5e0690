"""Annotations as Label Studio stores them -> training examples: which annotation of a task counts, which
tasks are left out of training (and why, counted), and the unlabeled pool."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from beal_backend.labelstudio.client import LabelStudioClient, Task
from beal_backend.labelstudio.label_config import LabelSchema, parse_label_config

log = logging.getLogger(__name__)


@dataclass
class Examples:
    """What a project's tasks give a round: labeled texts, unlabeled (task id, text), and per reason the
    annotated tasks left out of training (``skipped``) and the notes on those kept (``notes``)."""

    task_ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    label_sets: list[list[str]] = field(default_factory=list)
    pool_ids: list[int] = field(default_factory=list)
    pool_texts: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)

    def fingerprint(self) -> str:
        """What a round trains on, as one hash of each labeled task's id, text and labels. A version records it
        (``trained_on``), so a restarted service can tell whether annotations came after it (``recovery``)."""
        h = hashlib.sha256()
        for task_id, text, labels in sorted(zip(self.task_ids, self.texts, self.label_sets)):
            h.update(json.dumps([task_id, hashlib.sha256(text.encode()).hexdigest(), sorted(labels)]).encode())
        return h.hexdigest()


# Why an annotated task is left out of training (shown on /status and in /jobs). A task without a usable
# label is not a negative example: training on it as "no labels" would teach the model that nothing applies.
NO_TEXT = "task without text"
NO_CHOICE = "annotation without a choice (empty result)"
UNKNOWN_ONLY = "annotation whose choices are not in the label config"
SEVERAL_IN_SINGLE = "several choices in a single-choice project"
# Notes on tasks that are trained on.
CONFLICT_GT = "tasks with disagreeing annotations (ground truth used)"
CONFLICT_NEWEST = "tasks with disagreeing annotations (newest used)"
UNKNOWN_DROPPED = "tasks with choices not in the label config (those choices ignored)"


class ProjectSource(NamedTuple):
    schema: LabelSchema
    examples: Examples


def read_project(client: LabelStudioClient, project: str, max_chars: int, annotations: bool = True) -> ProjectSource:
    """The project's label config and its tasks as examples (without ``annotations``: every task in the pool)."""
    pid = int(project)
    schema = parse_label_config(client.label_config(pid))
    return ProjectSource(schema, collect_examples(client.tasks(pid, annotations=annotations), schema, max_chars))


def collect_examples(tasks: list[Task], schema: LabelSchema, max_chars: int) -> Examples:
    """One labeled example per annotated task, or a counted reason why none; unannotated tasks form the pool."""
    ex, known = Examples(), set(schema.labels)
    for task in tasks:
        text, _ = schema.text_of(task.data)
        if text is None:
            ex.skipped[NO_TEXT] += 1
            continue
        text = text[:max_chars]
        annotations = [a for a in task.annotations if isinstance(a, dict) and not a.get("was_cancelled")]
        if not annotations:  # cancelled (skipped) annotations are not labels
            ex.pool_ids.append(task.id)
            ex.pool_texts.append(text)
            continue
        choices, note = _resolve(annotations, schema)
        if note:
            ex.notes[note] += 1
        labels = [c for c in dict.fromkeys(choices) if c in known]
        why = (
            NO_CHOICE
            if not choices
            else UNKNOWN_ONLY
            if not labels
            else SEVERAL_IN_SINGLE
            if schema.single_label and len(labels) > 1
            else None
        )
        if why:
            ex.skipped[why] += 1
            continue
        if len(labels) < len(set(choices)):
            ex.notes[UNKNOWN_DROPPED] += 1
            log.warning(
                "task %s: choices %s are not in the label config; ignored", task.id, sorted(set(choices) - known)
            )
        ex.task_ids.append(task.id)
        ex.texts.append(text)
        ex.label_sets.append(labels)
    return ex


def _resolve(annotations: list[dict], schema: LabelSchema) -> tuple[list[str], str | None]:
    """The choices a task is trained on: its ground-truth annotation's if it has one, else the newest
    annotation's (by updated_at). Returns (choices, a note when the annotations disagree)."""

    def newest_first(a):
        return str(a.get("updated_at") or a.get("created_at") or "")

    ordered = sorted(annotations, key=newest_first, reverse=True)
    truth = [a for a in ordered if a.get("ground_truth")]
    chosen = (truth or ordered)[0]
    choices = schema.choices_of(chosen.get("result"))
    if len({frozenset(schema.choices_of(a.get("result"))) for a in ordered}) < 2:
        return choices, None
    return choices, CONFLICT_GT if truth else CONFLICT_NEWEST


def left_out(ex: Examples) -> str:
    """The skip reasons, for a round's reason line: "(left out: 3 task without text, ...)"."""
    if not ex.skipped:
        return ""
    return " (left out: " + ", ".join(f"{n} {why}" for why, n in ex.skipped.most_common()) + ")"
