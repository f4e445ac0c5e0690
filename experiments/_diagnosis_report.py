"""Verdicts and the Markdown report of ``diagnose_acquisition.py`` (issue #13). Pure Python on the numbers the
script measured; the rules are spelled out in ``RULES`` and printed in the report."""

from __future__ import annotations

import numpy as np

PRIMARY = "beal"  # the strategy the issue is about: plain top-k of the lowest EC under MC dropout
RULES = (
    "Verdicts use rounds 1-5: the runs label the whole pool by their last round (initial + rounds × batch = "
    "pool), so late batches are nearly forced; over a complete repeat every strategy labels the whole pool once, "
    "so its all-rounds label and outlier means in (b) equal the pool's by construction. "
    "(a) confirmed when BEAL's near-duplicate share (nearest batch neighbour cosine > 0.9) is above random's in "
    "≥ 80 % of paired batches, at least twice random's and ≥ 5 %; refuted when neither its mean cosine nor its "
    "near-duplicate share exceeds random's; else mixed. (b) confirmed when BEAL's batches carry a rare label "
    "(bottom quartile of pool frequency) more often than random's in ≥ 80 % of paired batches and its area "
    "difference against random is larger on macro- than on micro-F1; refuted without a rare-label excess; else "
    "mixed. (c) confirmed when the paired bootstrap interval of AUROC(fine-tuned) − AUROC(frozen) lies above 0, "
    "refuted when below 0, mixed when it contains 0 or when the fine-tuned model has the lower macro-F1 (a "
    "model that predicts little beyond the majority label has errors that are easy to flag)."
)


# ---------------------------------------------------------------- verdicts


def verdict_a(agg: dict, name: str = PRIMARY) -> tuple[str, str]:
    me, rnd = agg[name]["early"], agg["random"]["early"]
    dup, dup_r = me["near_dup"]["mean"], rnd["near_dup"]["mean"]
    numbers = (
        f"{name} in rounds 1-5: mean pairwise cosine {me['cosine']['mean']:.3f} vs random "
        f"{rnd['cosine']['mean']:.3f} (higher in {me['cosine']['above_random']:.0%} of paired batches), "
        f"near-duplicate share {dup:.1%} vs {dup_r:.1%} (higher in {me['near_dup']['above_random']:.0%}); all "
        f"rounds: cosine {agg[name]['all']['cosine']['mean']:.3f} vs {agg['random']['all']['cosine']['mean']:.3f}, "
        f"near-duplicates {agg[name]['all']['near_dup']['mean']:.1%} vs {agg['random']['all']['near_dup']['mean']:.1%}"
    )
    if me["near_dup"]["above_random"] >= 0.8 and dup >= max(2 * dup_r, 0.05):
        return "confirmed", numbers
    if me["cosine"]["diff_random"] <= 0 and me["near_dup"]["diff_random"] <= 0:
        return "refuted", numbers
    return "mixed", numbers


def verdict_b(agg: dict, pool: dict, f1: dict, name: str = PRIMARY) -> tuple[str, str]:
    me, rnd = agg[name]["early"], agg["random"]["early"]
    rare = me["rare_share"]
    numbers = (
        f"{name} in rounds 1-5: rare-label share {rare['mean']:.1%} vs random {rnd['rare_share']['mean']:.1%} "
        f"and pool {pool['rare_share']:.1%} (higher than random in {rare['above_random']:.0%} of paired batches), "
        f"mean label frequency {me['label_freq']['mean']:.3f} vs {rnd['label_freq']['mean']:.3f}, labels/text "
        f"{me['labels_per_text']['mean']:.2f} vs {rnd['labels_per_text']['mean']:.2f}, outlier score "
        f"{me['outlier']['mean']:.3f} vs {rnd['outlier']['mean']:.3f}"
    )
    if rare["diff_random"] <= 0:
        return "refuted", numbers
    if name not in f1:
        return "undetermined", numbers + "; no complete repeat yet to compare F1 areas"
    micro, macro = f1[name]["micro_f1"]["mean"], f1[name]["macro_f1"]["mean"]
    numbers += f"; area vs random micro-F1 {micro:+.4f}, macro-F1 {macro:+.4f} ({f1[name]['repeats']} repeats)"
    return ("confirmed" if rare["above_random"] >= 0.8 and macro > micro else "mixed"), numbers


def verdict_c(c: dict) -> tuple[str, str]:
    fz = c["frozen"]
    if "finetune" not in c:
        return "undetermined", f"frozen AUROC(-EC) {fz['auroc_neg_ec']:.3f}; fine-tuning not run"
    ft, (low, high) = c["finetune"], c["auroc_diff_interval"]
    if np.isnan(ft["auroc_neg_ec"]) or np.isnan(fz["auroc_neg_ec"]):  # every (or no) prediction wrong
        return "undetermined", (
            f"wrong share frozen {fz['wrong_share']:.1%}, fine-tuned {ft['wrong_share']:.1%}: AUROC needs both "
            "right and wrong predictions (train the fine-tuned model longer: --epochs)"
        )
    numbers = (
        f"AUROC(−EC) for a wrong label set: frozen {fz['auroc_neg_ec']:.3f} vs fine-tuned {ft['auroc_neg_ec']:.3f} "
        f"on the same {ft['texts']} test texts (difference, 95 % paired bootstrap: [{low:+.3f}, {high:+.3f}]); "
        f"Spearman(EC, per-text F1) {fz['spearman_ec_f1']:+.3f} vs {ft['spearman_ec_f1']:+.3f}; the plain "
        f"confidence baseline AUROC(−max p) {fz['auroc_neg_max_prob']:.3f} vs {ft['auroc_neg_max_prob']:.3f}"
    )
    if low > 0 and ft["macro_f1"] < fz["macro_f1"]:  # its errors may just be easier to flag (majority label)
        return "mixed", numbers + (
            f", but the fine-tuned model is the weaker classifier (macro-F1 {ft['macro_f1']:.3f} vs "
            f"{fz['macro_f1']:.3f}, {ft['labels_predicted']} vs {fz['labels_predicted']} labels ever predicted)"
        )
    return ("confirmed" if low > 0 else "refuted" if high < 0 else "mixed"), numbers


# ---------------------------------------------------------------- tables


def _f(x, spec: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def _both(s: dict, metric: str, key: str, spec: str, scale: float = 1.0) -> str:
    """``all (rounds 1-5)`` of one statistic; ``scale`` divides (a ratio to the pool)."""
    a, e = s["all"][metric][key], s["early"][metric][key]
    return f"{_f(a / scale if a is not None else None, spec)} ({_f(e / scale if e is not None else None, spec)})"


def _header(*columns: str) -> list[str]:
    """A Markdown table's head: the column names, then the separator row."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def table_a(agg: dict) -> list[str]:
    lines = _header(
        "strategy", "batches", "mean cosine", "Δ random", "higher than random",
        "near-dup share", "Δ random", "higher than random",
    )  # fmt: skip
    for name, s in agg.items():
        cells = _compared(s, "cosine", ".3f") + _compared(s, "near_dup", ".1%")
        lines.append(f"| {name} | {s['batches']} | " + " | ".join(cells) + " |")
    return lines


def _compared(s: dict, metric: str, spec: str) -> list[str]:
    """A metric's mean, its difference to random and how often it is higher than random (``_both`` each)."""
    return [_both(s, metric, "mean", spec), _both(s, metric, "diff_random", "+" + spec), _above(s, metric)]


def _above(s: dict, metric: str) -> str:
    return _both(s, metric, "above_random", ".0%")


def table_b(agg: dict, pool: dict, f1: dict) -> list[str]:
    lines = _header(
        "strategy", "label freq ÷ pool", "rare-label share", "Δ random", "higher than random", "labels/text ÷ pool",
        "outlier ÷ pool", "Δ random", "area vs random: micro-F1 [95 % CI]", "macro-F1 [95 % CI]",
    )  # fmt: skip
    lines.append(
        f"| pool | {_f(pool['label_freq'])} | {_f(pool['rare_share'], '.1%')} | | | "
        f"{_f(pool['labels_per_text'], '.2f')} | {_f(pool['outlier'])} | | | |"
    )
    for name, s in agg.items():
        cells = [
            _both(s, "label_freq", "mean", ".2f", pool["label_freq"]),
            *_compared(s, "rare_share", ".1%"),
            _both(s, "labels_per_text", "mean", ".2f", pool["labels_per_text"]),
            _both(s, "outlier", "mean", ".3f", pool["outlier"]),
            _both(s, "outlier", "diff_random", "+.3f"),
            _interval(f1.get(name, {}).get("micro_f1")),
            _interval(f1.get(name, {}).get("macro_f1")),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _interval(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "–"
    return f"{d['mean']:+.4f} [{_f(d['low'], '+.4f')}, {_f(d['high'], '+.4f')}] (n={d['n']})"


def table_c(c: dict) -> list[str]:
    lines = _header(
        "model", "test texts", "T", "wrong share", "labels predicted", "AUROC(−EC)", "AUROC(−max p)",
        "Spearman(EC, F1)", "micro-F1", "macro-F1", "train s", "score s",
    )  # fmt: skip
    for key in ("frozen_all", "frozen", "finetune"):
        if key in c:
            r = c[key]
            lines.append(
                f"| {key} | {r['texts']} | {r['passes']} | {r['wrong_share']:.1%} | {r['labels_predicted']} "
                f"| {r['auroc_neg_ec']:.3f} "
                f"| {r['auroc_neg_max_prob']:.3f} | {r['spearman_ec_f1']:+.3f} | {r['micro_f1']:.3f} "
                f"| {r['macro_f1']:.3f} | {r['train_seconds']:.1f} | {r['score_seconds']:.1f} |"
            )
    return lines


# ---------------------------------------------------------------- the report


def render(result: dict) -> str:
    lines = [
        "# Diagnosis of issue #13: why lowest-EC batches can lose to random",
        "",
        f"Written by `experiments/diagnose_acquisition.py` in {result['seconds']:.0f} s ({result['machine']}).",
        'Each cell: all rounds (rounds 1-5 in brackets). Δ random and "higher than random": paired with the random '
        "batch of the same repeat and round. Features: the runs' frozen sentence features (cosine).",
        "",
        RULES,
        "",
    ]
    for name, r in result["runs"].items():
        lines += _run_section(name, r)
    if result["skipped"]:
        lines += [f"Skipped (no selections.jsonl): {', '.join(result['skipped'])}.", ""]
    if "ec_informativeness" in result:
        lines += _c_section(result["ec_informativeness"])
    return "\n".join(lines) + "\n"


def _run_section(name: str, r: dict) -> list[str]:
    state = "finished (summary.json present)" if r["finished"] else "partial (no summary.json yet: still running)"
    read = ", ".join(f"{k} {v['repeats']} repeats / {v['batches']} batches" for k, v in r["read"].items())
    lines = [f"## {name}", "", f"Run {state}. Read: {read}.", "", "### (a) Redundancy within a batch", ""]
    lines += table_a(r["batches"])
    if "verdict_a" in r:
        lines += ["", f"**(a) {r['verdict_a'][0]}**: {r['verdict_a'][1]}."]
    lines += ["", "### (b) Rare-label and outlier bias", ""]
    lines += table_b(r["batches"], r["pool"], r["vs_random"])
    lines += [
        "",
        f"{r['pool']['rare_labels']} rare labels. Outlier = mean cosine distance to the 10 nearest pool texts. "
        "Area columns: the paired area differences over complete repeats (simulation.analysis, as in summary.json).",
    ]
    if "verdict_b" in r:
        lines += ["", f"**(b) {r['verdict_b'][0]}**: {r['verdict_b'][1]}."]
    return [*lines, ""]


def _c_section(c: dict) -> list[str]:
    lines = [
        "## (c) Does low EC flag wrong predictions? (GoEmotions, frozen vs fine-tuned)",
        "",
        f"{c['labeled']} random pool texts labeled (seed {c['seed']}), pool as goemotions-mean. `frozen_all` "
        f"scores the whole test set; `frozen` and `finetune` the same first {c['frozen']['texts']} test texts. "
        "Wrong = the deterministic prediction's label set differs from the gold set.",
        "",
        *table_c(c),
    ]
    if "finetune" in c:
        ft = c["finetune"]
        lines += [
            "",
            f"Fine-tuning: MC-dropout scope {ft['scope']}, {ft.get('epochs_run', '?')} of at most {ft['epochs']} "
            f"epochs on {ft.get('n_train', '?')} texts ({ft.get('n_val', 0)} held out for early stopping).",
        ]
    verdict, numbers = c["verdict"]
    return [*lines, "", f"**(c) {verdict}**: {numbers}.", ""]


def jsonable(x):
    """Plain JSON types, floats rounded, NaN as null; keys starting with ``_`` (raw arrays) left out."""
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if np.isnan(x) else round(float(x), 6)
    return x.item() if isinstance(x, np.generic) else x
