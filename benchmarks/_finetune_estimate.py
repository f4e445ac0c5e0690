"""``bench_round.py``'s finetune step: the finetune learner on the frozen round's project (its annotations and pool),
in-process, one epoch and a sample of the pool measured, scaled to ``EPOCHS`` and the whole pool, and reported next
to the frozen round's measured Label Studio steps."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from _common import timed


def finetune_estimate(env: dict, project: int, passes: int, sample: int, seed: int = 0) -> dict:
    """The finetune learner on the project's own annotations and pool, in this process: one epoch and
    ``sample`` pool texts measured, scaled to EPOCHS and to the whole pool."""
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.engine.holdout import held_out_split
    from beal_backend.labelstudio.client import LabelStudioClient
    from beal_backend.wiring import scoring_config, train_config
    from beal_backend.worker import pool_scores
    from beal_backend.worker.examples import read_project

    s = Settings.from_env({**env, "LEARNER": "finetune", "MC_SCOPE": "last-2", "MC_PASSES": str(passes)})
    client = LabelStudioClient(s.label_studio_url, s.label_studio_api_key)
    schema, ex = read_project(client, str(project), s.max_text_chars)
    cfg = replace(train_config(s), epochs=1, single_label=schema.single_label)
    held = held_out_split(ex.task_ids, cfg.val_fraction, cfg.min_val).stop  # an estimate: the gate half trains
    steps: list[float] = []  # time of each optimiser step: separates model loading from the epoch
    with timed() as t_train:
        trained = learners.build("finetune", cfg).fit(
            ex.texts,
            ex.label_sets,
            list(schema.labels),
            val_rows=held,
            on_progress=lambda p: steps.append(time.perf_counter()),
        )
    t_end = time.perf_counter()
    per_step = (steps[-1] - steps[0]) / max(len(steps) - 1, 1)
    epoch = per_step * len(steps) + (t_end - steps[-1])  # the steps + held-out evaluation after them
    setup = t_train["wall"] - epoch
    rows = np.sort(
        np.random.default_rng(seed).choice(len(ex.pool_ids), size=min(sample, len(ex.pool_ids)), replace=False)
    )
    with timed() as t_score:
        pool_scores.score_pool(
            trained, [ex.pool_ids[i] for i in rows], [ex.pool_texts[i] for i in rows], scoring_config(s)
        )
    return {
        "epochs": train_config(s).epochs,
        "train_1_epoch": t_train,
        "setup": setup,
        "epoch": epoch,
        "sample": len(rows),
        "pool": len(ex.pool_ids),
        "score_sample": t_score,
        "scope": scoring_config(s).scope,
        "passes": scoring_config(s).passes,
    }


def finetune_report(env: dict, args, project: int, frozen: dict) -> dict:
    ft = finetune_estimate(env, project, args.passes, args.ft_sample)
    c = frozen["calls"]
    ls_steps = (
        c.get("tasks", 0)
        + c.get("label_config", 0)
        + c.get("push_predictions", 0)
        + c.get("set_model_version", 0)
        + c.get("model_versions", 0)
        + c.get("delete_model_version", 0)
    )
    train = ft["setup"] + ft["epoch"] * ft["epochs"]
    score = ft["score_sample"]["wall"] * ft["pool"] / ft["sample"]
    total = ls_steps + train + score
    print(
        f"[measured] finetune (in-process), 1 epoch on {args.annotations} annotations: "
        f"wall {ft['train_1_epoch']['wall']:.1f} s "
        f"cpu {ft['train_1_epoch']['cpu']:.1f} s = set-up (model load, tokenising) {ft['setup']:.1f} s "
        f"+ one epoch {ft['epoch']:.1f} s"
    )
    print(
        f"[measured] finetune scoring, {ft['scope']}, T={ft['passes']}, {ft['sample']} pool texts: "
        f"wall {ft['score_sample']['wall']:.1f} s "
        f"cpu {ft['score_sample']['cpu']:.1f} s"
    )
    print(
        f"[extrapolated] finetune round: train {ft['epochs']} epochs {train:.0f} s "
        f"(set-up + {ft['epochs']} x epoch; an upper bound: early stopping may stop sooner) "
        f"+ score {ft['pool']} texts {score:.0f} s "
        f"+ Label Studio steps of the frozen round (measured) {ls_steps:.1f} s = {total:.0f} s"
    )
    frozen_total = frozen["latency_job_end"]
    print(
        f"## finetune / frozen round: {total:.0f} s / {frozen_total:.1f} s = {total / frozen_total:.1f}x "
        f"(finetune extrapolated, frozen measured)"
    )
    return {
        **ft,
        "train_extrapolated": train,
        "score_extrapolated": score,
        "ls_steps": ls_steps,
        "total_extrapolated": total,
        "ratio_to_frozen": total / frozen_total,
    }
