"""Promotion gate, stable held-out slice, retention: hand-made inputs with known answers."""

from __future__ import annotations

from types import SimpleNamespace

from beal_backend.worker import promotion
from beal_backend.worker import rounds as jobs


def cand(micro, macro):
    return SimpleNamespace(metrics={"val_micro_f1": micro, "val_macro_f1": macro})


def test_first_model_is_always_promoted():
    d = promotion.decide(cand(0.1, 0.05), None, 0.02, n_held=12)
    assert d["promoted"] and d["reason"] == "first model of the project"


def test_not_worse_beyond_margin_is_promoted():
    d = promotion.decide(cand(0.70, 0.50), {"version": "v1", "micro_f1": 0.71, "macro_f1": 0.51}, 0.02, 12)
    assert d["promoted"] and "v1" in d["reason"]


def test_worse_beyond_margin_is_rejected_with_reason():
    d = promotion.decide(cand(0.60, 0.50), {"version": "v1", "micro_f1": 0.70, "macro_f1": 0.51}, 0.02, 12)
    assert not d["promoted"]
    assert "micro_f1 0.600 vs 0.700" in d["reason"] and "macro_f1" not in d["reason"]


def test_macro_drop_alone_rejects():
    d = promotion.decide(cand(0.80, 0.30), {"version": "v1", "micro_f1": 0.70, "macro_f1": 0.40}, 0.05, 12)
    assert not d["promoted"] and "macro_f1 0.300 vs 0.400" in d["reason"]


def test_changed_label_set_promotes():
    d = promotion.decide(cand(0.1, 0.1), {"version": "v1", "labels_changed": True}, 0.02, 12)
    assert d["promoted"] and "label set changed" in d["reason"]


def test_a_current_version_that_trained_on_the_slice_is_no_yardstick():
    """Found live: the first model trains on everything (no slice yet), then scores ~1.0 on the slice it saw,
    and every later candidate was rejected. Such a version is not comparable: the candidate is promoted."""
    d = promotion.decide(cand(0.33, 0.20), {"version": "v1", "saw_the_slice": True}, 0.02, 12)
    assert (
        d["promoted"]
        and d["reason"] == "v1 was trained on the held-out tasks (before the slice existed): not comparable"
    )


def test_only_versions_that_held_the_slice_out_are_compared(tmp_path):
    """``_current_on_slice`` reads whether the current version held a slice out from its own promotion record."""
    schema = SimpleNamespace(serves=lambda labels, single: True)

    def current_with(meta: dict):
        rt = SimpleNamespace(store=SimpleNamespace(current=lambda p: "v1", metadata=lambda p, v: meta))
        return jobs._current_on_slice(rt, "1", schema, None, [0, 1])  # type: ignore[arg-type]  # no texts read

    for meta in ({"labels": ["a"]}, {"labels": ["a"], "promotion": {"candidate": {"n_held_out": 0}}}):
        assert current_with(meta) == {"version": "v1", "saw_the_slice": True}


def test_held_out_slice_is_stable_across_rounds():
    ids = list(range(1, 401))
    first = {ids[r] for r in jobs.held_out_rows(ids, 0.1, 10)}
    grown = list(range(1, 801))
    second = {grown[r] for r in jobs.held_out_rows(grown, 0.1, 10)}
    assert first and first <= second  # a held-out task stays held out as the project grows
    assert 0.05 < len(second) / 800 < 0.15


def test_held_out_slice_needs_min_val():
    assert jobs.held_out_rows([1, 2, 3], 0.1, 10) == []
    assert jobs.held_out_rows([5], 1.0, 1) == []  # never hold out everything


def test_prune_keeps_current_and_newest(tmp_path):
    from beal_backend.store.versions import METADATA, ModelStore

    store = ModelStore(tmp_path)
    names = [f"beal-2026010{i}T000000000000Z-0000000{i}" for i in range(1, 7)]
    for n in names:
        d = tmp_path / "5" / n
        d.mkdir(parents=True)
        (d / METADATA).write_text("{}")
    store.set_current("5", names[1])
    assert store.prune("5", keep=2) == [names[0], names[2], names[3]]
    assert store.versions("5") == [names[1], names[4], names[5]]
    assert store.current("5") == names[1]


def test_prune_keeps_promoted_versions_whatever_was_rejected(tmp_path):
    """Promoted (rollback targets) and rejected candidates are kept by separate counts: KEEP_VERSIONS promoted
    besides the current one, and min(KEEP_VERSIONS, KEEP_REJECTED = 2) rejected, newest first."""
    import json

    from beal_backend.store.versions import KEEP_REJECTED, METADATA, ModelStore

    store = ModelStore(tmp_path)
    names = [f"beal-2026010{i}T000000000000Z-0000000{i}" for i in range(1, 9)]
    rejected = {2, 4, 6, 8}  # 1, 3, 5, 7 promoted; 5 is current
    for i, n in enumerate(names, start=1):
        (tmp_path / "5" / n).mkdir(parents=True)
        (tmp_path / "5" / n / METADATA).write_text(json.dumps({"promotion": {"promoted": i not in rejected}}))
    store.set_current("5", names[4])
    assert KEEP_REJECTED == 2
    # promoted others 1, 3, 7: keep the newest 1 (7); rejected 2, 4, 6, 8: keep min(1, 2) = 1 (8)
    assert store.prune("5", keep=1) == [names[0], names[1], names[2], names[3], names[5]]
    assert store.versions("5") == [names[4], names[6], names[7]]
    assert store.prune("5", keep=0) == [names[6], names[7]]
    assert store.versions("5") == [names[4]] and store.current("5") == names[4]


def test_concurrent_project_writes_never_leave_a_torn_file(tmp_path):
    """Label Studio calls /setup several times at once; every read must see one whole write."""
    import json
    import threading

    from beal_backend.store.versions import ModelStore

    store = ModelStore(tmp_path)
    errors = []

    def writer(k):
        for i in range(50):
            store.write_project("3", {"label_config": "x" * (k * 40 + i), "writer": k})

    def reader():
        for _ in range(200):
            try:
                store.read_project("3")
            except (json.JSONDecodeError, FileNotFoundError) as e:
                errors.append(e)

    store.write_project("3", {"label_config": ""})
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not list((tmp_path / "3").glob(".*tmp"))
