"""Promotion gate, stable held-out slice, retention: hand-made inputs with known answers."""

from __future__ import annotations

from types import SimpleNamespace

from beal_backend.engine.holdout import held_out_rows
from beal_backend.worker import promotion


def test_only_versions_that_held_the_slice_out_are_compared(tmp_path):
    """``current_version`` reads whether the current version held a slice out from its own promotion record."""
    schema = SimpleNamespace(serves=lambda labels, single: True)

    def current_with(meta: dict):
        rt = SimpleNamespace(store=SimpleNamespace(current=lambda p: "v1", metadata=lambda p, v: meta))
        return promotion.current_version(rt, "1", schema)

    for meta in ({"labels": ["a"]}, {"labels": ["a"], "promotion": {"candidate": {"n_held_out": 0}}}):
        assert current_with(meta) == {"version": "v1", "saw_the_slice": True}


def test_held_out_slice_is_stable_across_rounds():
    ids = list(range(1, 401))
    first = {ids[r] for r in held_out_rows(ids, 0.1, 10)}
    grown = list(range(1, 801))
    second = {grown[r] for r in held_out_rows(grown, 0.1, 10)}
    assert first and first <= second  # a held-out task stays held out as the project grows
    assert 0.05 < len(second) / 800 < 0.15


def test_held_out_slice_needs_min_val():
    assert held_out_rows([1, 2, 3], 0.1, 10) == []
    assert held_out_rows([5], 1.0, 1) == []  # never hold out everything


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
