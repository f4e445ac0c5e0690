"""A round's quality gate on its own half of the held-out slice (issue 21 item 5): the learner never gets the
gate half, early-stops on the other half, and the gate scores both versions on the gate half."""

from __future__ import annotations

import pytest

from beal_backend.engine import learners, training
from beal_backend.engine.holdout import held_out_split
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.worker import rounds as jobs
from beal_backend.worker.examples import collect_examples
from tests.integration.test_frozen_round import CONFIG, frozen_runtime


@pytest.fixture
def rt(tmp_path, tiny_encoder_dir, monkeypatch):
    return frozen_runtime(tmp_path, tiny_encoder_dir, monkeypatch, 80, 70, val_fraction=0.4, min_val=4, mc_passes=2)


def test_round_trains_without_the_gate_half_and_judges_both_versions_on_it(rt, monkeypatch):
    fits, real_fit = [], learners.FrozenLearner.fit

    def spy(self, texts, label_sets, labels, val_rows=None, **kw):
        fits.append((list(texts), list(val_rows)))
        return real_fit(self, texts, label_sets, labels, val_rows=val_rows, **kw)

    monkeypatch.setattr(learners.FrozenLearner, "fit", spy)
    ex = collect_examples(rt.fake.tasks_, parse_label_config(CONFIG), 10**6)
    held = held_out_split(ex.task_ids, 0.4, 4)
    assert held.stop and held.gate
    gate_texts, gate_labels = [ex.texts[i] for i in held.gate], [ex.label_sets[i] for i in held.gate]

    first = jobs.run_round("7", rt)
    texts, val_rows = fits[0]
    assert len(texts) == len(ex.texts) - len(held.gate) and not set(gate_texts) & set(texts)
    assert [texts[k] for k in val_rows] == [ex.texts[i] for i in held.stop]  # early stopping: the other half
    gate = first["promotion"]
    assert gate["promoted"] and gate["reason"] == "first model of the project"
    assert (gate["candidate"]["n_gate"], gate["candidate"]["n_held_out"]) == (
        len(held.gate),
        len(held.stop + held.gate),
    )
    f1 = training.evaluate(rt.store.load("7", first["version"]), gate_texts, gate_labels)
    assert gate["candidate"]["micro_f1"] == pytest.approx(f1["micro_f1"])  # the gate half's F1, not early stopping's

    second = jobs.run_round("7", rt)  # same data, same seed: the same head, so no difference at all
    boot = second["promotion"]["current"]["bootstrap"]
    assert second["promotion"]["current"]["version"] == first["version"]
    assert boot["micro_f1"]["current"] == pytest.approx(f1["micro_f1"])
    assert boot["micro_f1"]["difference"] == 0.0 and boot["micro_f1"]["upper"] == 0.0
    assert second["outcome"] == "trained" and "beyond the noise of" in second["promotion"]["reason"]
