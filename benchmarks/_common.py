"""Shared helpers of the benchmarks: where the datasets are, timers, machine description. Not part of the
engine. Datasets are read by ``beal_backend.simulation.datasets``, the simulation's own loader."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beal_backend.simulation import datasets


def default_datasets() -> Path:
    """The datasets folder: ``BEAL_DATASETS``, else ``../shared/datasets`` beside the repository when present,
    else the repository's small sample (``tests/fixtures``: 500 GoEmotions texts, enough for a smoke run)."""
    if os.environ.get("BEAL_DATASETS"):
        return Path(os.environ["BEAL_DATASETS"])
    shared = ROOT.parent / "shared" / "datasets"
    return shared if shared.is_dir() else ROOT / "tests" / "fixtures"


DATASETS = default_datasets()


def add_data_arg(ap) -> None:
    ap.add_argument(
        "--data",
        type=Path,
        default=DATASETS,
        help=f"folder with one sub-folder per dataset (default: BEAL_DATASETS or {DATASETS})",
    )


def add_dataset_args(ap, default: str = "goemotions") -> None:
    """``--data`` and ``--dataset``, one sub-folder of it."""
    add_data_arg(ap)
    ap.add_argument("--dataset", default=default, help="sub-folder of --data")


def add_simulate_args(ap, pool_size: int, test_size: int, strategies: str, **counts: int) -> None:
    """The ``beal simulate`` options a benchmark passes on (``simulate_argv``): the dataset, pool and test sizes,
    strategies, and ``counts`` (``rounds=5``: ``--rounds`` with that default)."""
    add_dataset_args(ap)
    ap.add_argument("--pool-size", type=int, default=pool_size)
    ap.add_argument("--test-size", type=int, default=test_size)
    for name, default in counts.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--strategies", default=strategies)


def simulate_argv(args, out: Path | str) -> list[str]:
    """``beal simulate``'s command line for the options of ``add_simulate_args``, writing to ``out``."""
    argv = ["simulate", "--data", str(args.data / args.dataset), "--out", str(out), "--pool-size", str(args.pool_size),
            "--test-size", str(args.test_size), "--strategies", args.strategies, "--no-progress"]  # fmt: skip
    for name in ("rounds", "repeats"):
        if getattr(args, name, None) is not None:
            argv += [f"--{name}", str(getattr(args, name))]
    return argv


def simulate_config(argv: list[str]):
    """The configuration ``beal <argv>`` (a ``simulate`` command line) runs with, taken before anything runs."""
    from beal_backend.cli import main as beal
    from beal_backend.simulation import runner

    seen = []

    def capture(cfg, report_only=False):
        seen.append(cfg)
        raise ValueError("captured")

    real, runner.simulate = runner.simulate, capture
    try:
        beal(argv)
    finally:
        runner.simulate = real
    return seen[0]


def add_protocol_args(ap, datasets: list[str]) -> None:
    """The fine-tuned simulation protocol of issue #13 (pool 1,000, 50 + 19 x 50, 3 repeats, 7 strategies), for
    benchmarks that measure or extrapolate its cost, and where its data comes from."""
    ap.add_argument("--datasets", nargs="+", default=datasets)
    add_data_arg(ap)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--pool-size", type=int, default=1000)
    ap.add_argument("--initial", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=19)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strategies", type=int, default=7, help="strategies of the run (each trains every round)")


def protocol_parser(doc: str, datasets: list[str]) -> argparse.ArgumentParser:
    """The command line of a script run per dataset on the fine-tuned protocol (``add_protocol_args``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_protocol_args(ap, datasets)
    return ap


def run_per_dataset(title: str, args, run) -> None:
    """The ``# title`` line with the machine, then ``run(name, args)`` for each of ``args.datasets``."""
    print(f"# {title}  {machine()}")
    for name in args.datasets:
        run(name, args)


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def load_dataset(
    name: str, n: int | None, seed: int = 0, data: Path | None = None
) -> tuple[list[str], list[list[str]], list[str]]:
    """(texts, label_sets, labels) of ``n`` texts of ``<data>/<name>/train.jsonl``: the seeded sample (kept in
    file order) that ``beal simulate --pool-size n --seed seed`` takes as its pool, else all of it. Read in
    place, never copied."""
    folder = (data or DATASETS) / name
    rows = datasets.read_pool(folder, n, seed)
    return [r["text"] for r in rows], [list(r["labels"]) for r in rows], datasets.read_labels(folder)


@contextmanager
def timed():
    """Yields a dict that gets ``wall`` (perf_counter) and ``cpu`` (process CPU time, all threads) seconds."""
    out: dict[str, float] = {}
    w, c = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - w
        out["cpu"] = time.process_time() - c


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}, {os.cpu_count()} CPU cores visible, "
        f"{platform.processor() or platform.machine()}, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def loadavg() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def choices_config(labels, name: str = "c", choice: str = "multiple") -> str:
    """A Label Studio config of one <Choices> (``name``) over one <Text> with ``labels`` as its values."""
    return (
        f'<View><Text name="text" value="$text"/><Choices name="{name}" toName="text" choice="{choice}">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )


def seconds(runs: list[dict]) -> str:
    """``timed()`` results as 'cpu a, b s; wall c, d s'."""
    return (
        "cpu "
        + ", ".join(f"{t['cpu']:.2f}" for t in runs)
        + " s; wall "
        + ", ".join(f"{t['wall']:.2f}" for t in runs)
        + " s"
    )


def stopping_header(epochs_column: str) -> None:
    """The header of ``stopping_table``'s rows; ``epochs_column`` says what its last column counts."""
    print(f"| labeled | metric | early | fixed | fixed - early [min, max] | fixed wins | {epochs_column} |")
    print("|---|---|---|---|---|---|---|")


def stopping_table(n: int, early, fixed, epochs: str) -> bool:
    """The two rows (micro-F1, macro-F1) of the stopping benchmarks for ``n`` labels: ``early`` and ``fixed`` are
    [repeats, >= 2] arrays of (test micro-F1, macro-F1, ...) on the same texts and seeds. Printed: the means,
    fixed - early with its range, the wins of ``fixed`` and ``epochs``. Returns whether ``fixed`` is ahead on the
    mean in both metrics."""
    ahead = True
    for k, metric in enumerate(("micro-F1", "macro-F1")):
        d = fixed[:, k] - early[:, k]
        ahead &= bool(d.mean() > 0)
        print(
            f"| {n} | {metric} | {early[:, k].mean():.3f} | {fixed[:, k].mean():.3f} | {d.mean():+.3f} "
            f"[{d.min():+.3f}, {d.max():+.3f}] | {int((d > 0).sum())}/{len(d)} | {epochs} |",
            flush=True,
        )
    return ahead
