"""Markdown tables across simulation runs, for docs/results/README.md: every number is read from a run's
summary.json.

python scripts/results_tables.py docs/results/aapd-mean docs/results/goemotions-mean \
    docs/results/stackoverflow_titles-mean
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beal_backend import acquisition
from beal_backend.simulation import comparison as cmp
from beal_backend.simulation.analysis import SAVED_TARGET

VARIANTS = [name for name in acquisition.STRATEGIES if name.startswith("beal")]  # BEAL and its variants


def interval(ci: dict, digits: int = 0) -> str:
    if ci.get("mean") is None:  # no repeat in which both curves reached the target
        return "– (not reached)"
    if ci.get("low") is None:
        return f"{ci['mean']:+.{digits}f} (no interval)"
    return f"{ci['mean']:+.{digits}f} [{ci['low']:+.{digits}f}, {ci['high']:+.{digits}f}]"


def lead_table(runs: dict[str, dict], strategy: str) -> list[str]:
    out = [
        f"| dataset | learner | pool | labels `{strategy}` saves vs random to reach 98 % of all-data micro-F1 | "
        "same, macro-F1 | repeats |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in runs.items():
        st = s["settings"]
        out.append(
            f"| {name} | {st['mode']} ({st.get('pooling', 'cls')}) | {st['pool']:,} | "
            f"{interval(cmp.labels_saved(s, strategy, 'micro_f1'))} | "
            f"{interval(cmp.labels_saved(s, strategy, 'macro_f1'))} | {st['repeats']} |"
        )
    return out


def service_table(runs: dict[str, dict], strategy: str) -> list[str]:
    """Issue 20's lead: % of the pool to reach 98 % of the all-data F1 (mean curve) for ``strategy``, random and
    BADGE, and the labels ``strategy`` saves against each (paired over the repeats where both reached it)."""
    out = [
        f"| dataset | metric | all-data F1 | % of pool to 98 %: `{strategy}` / random / `badge` | "
        f"`{strategy}` ÷ random | labels saved vs random | labels saved vs `badge` |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in runs.items():
        for m in cmp.METRICS:
            pct = [s["strategies"][n][SAVED_TARGET][m]["mean_curve"] for n in (strategy, "random", "badge")]
            ratio = _ratio(pct[0], pct[1], 100.0 * s["strategies"]["random"]["fraction_labeled"][-1])
            shown = " / ".join(x if isinstance(x, str) else f"{x:.1f} %" for x in pct)
            saved = [cmp.labels_saved(s, strategy, m, base) for base in ("random", "badge")]
            out.append(
                f"| {name} | {m.replace('_f1', '-F1')} | {s['all_data'][m]['mean']:.3f} | {shown} | {ratio} | "
                f"{interval(saved[0])} (n={saved[0]['n']}) | {interval(saved[1])} (n={saved[1]['n']}) |"
            )
    return out


def strategies_table(runs: dict[str, dict]) -> list[str]:
    """Every strategy's area difference against random, micro / macro, one column per dataset (paired intervals)."""
    names = [n for n in acquisition.STRATEGIES if n != "random" and any(n in s["strategies"] for s in runs.values())]
    out = ["| strategy | " + " | ".join(f"{d}: Δ area micro / macro (repeats)" for d in runs) + " |"]
    out.append("|---" * (len(runs) + 1) + "|")
    for n in names:
        cells = []
        for s in runs.values():
            if n not in s["strategies"]:
                cells.append("not run")
                continue
            r = [interval(cmp.paired_auc(s, n, "random", m), 3) for m in cmp.METRICS]
            cells.append(f"{r[0]} / {r[1]} ({s['strategies'][n]['repeats']})")
        out.append(f"| `{n}` | " + " | ".join(cells) + " |")
    return out


def _ratio(mine, random, last: float) -> str:
    """``mine / random``; random not reached by the last round (``last`` % of the pool): an upper bound."""
    if isinstance(mine, str):
        return "–"
    return f"< {mine / last:.2f}" if isinstance(random, str) else f"{mine / random:.2f}"


def variants_table(runs: dict[str, dict], variants: list[str]) -> list[str]:
    out = ["| dataset | variant | area vs random, micro | macro | vs BEAL, micro | macro | may be default here |"]
    out.append("|---|---|---|---|---|---|---|")
    for name, s in runs.items():
        for v in variants:
            if v not in s["strategies"]:
                continue
            r = [interval(cmp.paired_auc(s, v, "random", m), 3) for m in cmp.METRICS]
            b = [interval(cmp.paired_auc(s, v, "beal", m), 3) for m in cmp.METRICS] if v != "beal" else ["–", "–"]
            ok = cmp.beats_random(s, v) and cmp.not_worse_than_beal(s, v)
            out.append(f"| {name} | {v} | {r[0]} | {r[1]} | {b[0]} | {b[1]} | {'yes' if ok else 'no'} |")
    return out


def lodo_table(runs: dict[str, dict], variants: list[str]) -> list[str]:
    out = [
        "| held-out dataset | chosen on the other two | beats random there (micro and macro) "
        "| not worse than BEAL there |"
    ]
    out.append("|---|---|---|---|")
    for held, r in cmp.leave_one_dataset_out(runs, variants).items():
        out.append(
            f"| {held} | {r['chosen']} | {'yes' if r['beats_random'] else 'no'} | "
            f"{'yes' if r['not_worse_than_beal'] else 'no'} |"
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders, each with a summary.json")
    p.add_argument("--strategy", default="beal", help="the strategy of the lead table (the service's default)")
    args = p.parse_args()
    runs = {d.name: json.loads((d / "summary.json").read_text()) for d in args.runs}
    variants = [v for v in VARIANTS if all(v in s["strategies"] for s in runs.values())]
    print("\n".join(lead_table(runs, args.strategy)), end="\n\n")
    if all("badge" in s["strategies"] for s in runs.values()):
        print("\n".join(service_table(runs, args.strategy)), end="\n\n")
    print("\n".join(strategies_table(runs)), end="\n\n")
    print("\n".join(variants_table(runs, variants)), end="\n\n")
    print("\n".join(lodo_table(runs, variants)), end="\n\n")
    for v in variants:
        print(f"- `{v}` may be the default (rule of issue #13 on every dataset): {cmp.may_be_default(runs, v)}")
        ok = cmp.may_be_service_default(runs, v)
        print(f"- `{v}` may be the default (rule of issue 20, service-regime runs): {ok}")


if __name__ == "__main__":
    main()
