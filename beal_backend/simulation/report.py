"""The report of a run: summary.json, summary.md (tables and one verdict sentence per paired metric) and
curves.png, all from the dict ``analysis.summarize`` returns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from beal_backend.simulation.analysis import METRICS

LABELS = {"micro_f1": "micro-F1", "macro_f1": "macro-F1"}


def write_report(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    if summary["strategies"]:
        plot_curves(summary, out / "curves.png")


def summary_markdown(summary: dict) -> str:
    lines = _header(summary) + _reach_tables(summary) + _area_table(summary) + _paired_section(summary)
    return "\n".join(lines) + "\n"


def _header(summary: dict) -> list[str]:
    s, strat = summary["settings"], summary["strategies"]
    repeats = ", ".join(f"{n} {e['repeats']}" for n, e in strat.items())
    return [
        f"# Active-learning simulation: {summary['dataset']}",
        "",
        f"Protocol `{s.get('protocol', 'paper')}`; mode `{s['mode']}`, encoder `{s['encoder']}`; "
        f"pool {s['pool']} texts, test {s['test']}, {s['labels']} labels; "
        f"{s['initial']} initial + {s['rounds']} rounds x {s['batch']}; T = {s['mc_passes']}; seed {s['seed']}; "
        f"repeats per strategy: {repeats}.",
        "",
    ]


def _fmt_pct(v) -> str:
    return v if isinstance(v, str) else f"{v:.1f}%"


def _reach_tables(summary: dict) -> list[str]:
    strat, alld, names = summary["strategies"], summary["all_data"], list(summary["strategies"])
    lines = []
    for key, title in (
        ("pct_to_all_data", "% of the pool labeled to reach the all-data F1 (the paper's Table 2; lower is better)"),
        ("pct_to_98pct_of_all_data", "% of the pool labeled to reach 98 % of the all-data F1 (lower is better)"),
    ):
        lines += [
            f"## {title}",
            "",
            "Linear interpolation between rounds on the mean learning curve; in brackets, the repeats whose own "
            "curve reached the target set by their own all-data run.",
            "",
            "| dataset | metric | all-data F1 | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for m in METRICS:
            target = f"{alld[m]['mean']:.3f} ± {alld[m]['std']:.3f}" if alld else "–"
            cells = [f"{_fmt_pct(strat[n][key][m]['mean_curve'])} ({strat[n][key][m]['reached']})" for n in names]
            lines.append(f"| {summary['dataset']} | {LABELS[m]} | {target} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _area_table(summary: dict) -> list[str]:
    lines = [
        "## Area under the learning curve (mean F1 over the labeled range; mean ± std over repeats)",
        "",
        "Paired against random on the same initial labels: wins/losses over repeats, mean difference of the area.",
        "",
        (
            "| strategy | micro-F1 area | macro-F1 area | vs random micro (W/L, Δ) | vs random macro (W/L, Δ) "
            "| final micro-F1 | s/round select | s/round train |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, e in summary["strategies"].items():
        vs = e.get("vs_random", {})
        cell = [f"{e['auc'][m]['mean']:.4f} ± {e['auc'][m]['std']:.4f}" for m in METRICS]
        pair = [
            f"{vs[m]['wins']}/{vs[m]['losses']}, {vs[m]['mean_auc_diff']:+.4f}"
            if vs and vs[m]["mean_auc_diff"] is not None
            else "–"
            for m in METRICS
        ]
        final = f"{e['curve']['micro_f1']['mean'][-1]:.4f}"
        secs = [f"{e['seconds']['select_mean']:.2f}", f"{e['seconds']['train_mean']:.2f}"]
        lines.append(f"| {n} | " + " | ".join(cell + pair + [final] + secs) + " |")
    return [*lines, ""]


# (key in vs_random, what it measures, number format)
PAIRED = (
    ("auc_diff", "area under the {} curve, strategy minus random", "{:+.4f}"),
    (
        "labels_saved_98pct",
        "labels saved to reach 98 % of the all-data {} (random's labels minus the strategy's)",
        "{:+.1f}",
    ),
)


def _paired_section(summary: dict) -> list[str]:
    """Paired differences against random with their t-interval, and one sentence per metric on whether each
    strategy's interval excludes zero."""
    others = {n: e["vs_random"] for n, e in summary["strategies"].items() if n != "random" and "vs_random" in e}
    if not others:
        return []
    conf = next(iter(others.values()))["micro_f1"]["auc_diff"]["confidence"]
    lines = [
        f"## Paired differences against random ({conf:.0%} t-interval over repeats)",
        "",
        (
            "Each repeat gives one difference (same initial labels for both); mean [interval] over the n repeats. "
            "Labels saved count only the repeats where both curves reached the target."
        ),
        "",
        "| strategy | "
        + " | ".join(f"Δ area {LABELS[m]}" for m in METRICS)
        + " | "
        + " | ".join(f"labels saved {LABELS[m]}" for m in METRICS)
        + " |",
        "|---|" + "---|" * 2 * len(METRICS),
    ]
    for n, vs in others.items():
        cells = [_interval(vs[m][key], fmt) for key, _, fmt in PAIRED for m in METRICS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("")
    for key, what, _ in PAIRED:
        for m in METRICS:
            lines.append(verdict(what.format(LABELS[m]), {n: vs[m][key] for n, vs in others.items()}))
    return lines


def _interval(ci: dict, fmt: str) -> str:
    if ci["mean"] is None:
        return "–"
    if ci["low"] is None:
        return f"{fmt.format(ci['mean'])} (n={ci['n']}, no interval)"
    return f"{fmt.format(ci['mean'])} [{fmt.format(ci['low'])}, {fmt.format(ci['high'])}] (n={ci['n']})"


def verdict(what: str, intervals: dict[str, dict]) -> str:
    """One sentence: for which strategies the interval lies above zero, below it, contains it, or is not made."""
    groups: dict[str, list[str]] = {}
    for name, ci in intervals.items():
        groups.setdefault(_side(ci), []).append(name)
    order = [s for s in SIDES if s in groups]
    return f"- {what[0].upper()}{what[1:]}: " + "; ".join(f"{s} for {', '.join(groups[s])}" for s in order) + "."


SIDES = (
    "the interval lies above zero (better than random)",
    "the interval lies below zero (worse than random)",
    "the interval contains zero (not distinguishable from random)",
    "no interval (fewer than 2 repeats)",
)


def _side(ci: dict) -> str:
    if ci["excludes_zero"] is None:
        return SIDES[3]
    if ci["excludes_zero"]:
        return SIDES[0] if ci["low"] > 0 else SIDES[1]
    return SIDES[2]


# one colour per strategy on every plot; BEAL red and drawn thick, random grey
COLORS = {
    "random": "tab:gray",
    "coreset": "tab:olive",
    "bald": "tab:green",
    "badge": "tab:purple",
    "entropy": "tab:brown",
    "beal-deterministic": "tab:orange",
    "beal-diverse": "tab:pink",
    "beal-stochastic": "tab:cyan",
    "beal-typical": "tab:blue",
    "beal-kmeans": "black",
    "beal": "tab:red",
}


def plot_curves(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strat, alld = summary["strategies"], summary["all_data"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), constrained_layout=True)
    spare = iter(["tab:blue", "black"] * len(strat))
    colors = {name: COLORS.get(name) or next(spare) for name in strat}
    for ax, (m, label) in zip(axes, (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"))):
        for name, e in strat.items():
            x = 100.0 * np.asarray(e["fraction_labeled"])
            mean, std = np.asarray(e["curve"][m]["mean"]), np.asarray(e["curve"][m]["std"])
            bold = name == "beal"
            ax.plot(
                x,
                mean,
                color=colors[name],
                lw=2.6 if bold else 1.4,
                marker="o",
                ms=3,
                label=name,
                zorder=3 if bold else 2,
            )
            ax.fill_between(x, mean - std, mean + std, color=colors[name], alpha=0.12, lw=0)
        if m in alld:
            ax.axhline(alld[m]["mean"], color="black", ls="--", lw=1.2, label="all data")
            ax.annotate(
                f"all data {alld[m]['mean']:.3f}", (2, alld[m]["mean"]), xytext=(0, 4), textcoords="offset points"
            )
        ax.set_xlim(0, 101)
        ax.set_xlabel("% of the pool labeled")
        ax.set_ylabel(f"test {label}")
        ax.set_title(f"{summary['dataset']}: {label}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    s = summary["settings"]
    fig.suptitle(
        f"{s['mode']} {s['encoder']}: {s['initial']} initial + {s['rounds']} x {s['batch']}, T = {s['mc_passes']}; "
        "mean ± std over repeats",
        fontsize=10,
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
