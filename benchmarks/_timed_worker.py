"""`beal worker` with timers around its Label Studio calls and jobs, for the round benchmarks.

Nothing in the engine changes: before the worker starts, the Label Studio client's methods, the frozen
learner's cache read and the two RQ entry points are wrapped, and each call appends one JSON line
(``event``, ``start``, ``seconds``, ``pid``; jobs also ``maxrss_mb``, the work horse's peak RSS) to the
file named by ``BENCH_TIMINGS``. RQ forks a work horse per job, which inherits the wrappers.

    BENCH_TIMINGS=/tmp/t.jsonl REDIS_URL=... python benchmarks/_timed_worker.py --name w1
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beal_backend import wiring
from beal_backend.cli import main
from beal_backend.engine import learners
from beal_backend.labelstudio.client import LabelStudioClient

LOG = os.environ["BENCH_TIMINGS"]
CLIENT_CALLS = (
    "label_config",
    "tasks",
    "push_predictions",
    "set_model_version",
    "model_versions",
    "delete_model_version",
)


def _write(**fields) -> None:
    with open(LOG, "a") as f:  # one short line per call: appends from several processes do not interleave
        f.write(json.dumps(fields) + "\n")


def timed(event: str, fn, rss: bool = False):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            extra = {"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024} if rss else {}
            _write(event=event, start=t0, seconds=time.time() - t0, pid=os.getpid(), **extra)

    return wrapper


if os.environ.get("BENCH_LS_TIMEOUT"):  # a benchmark-only override (LS_TIMEOUT is no setting): labelled in the output
    _init = LabelStudioClient.__init__

    def _init_with_timeout(self, url, api_key, timeout=30.0, **kw):
        _init(self, url, api_key, timeout=float(os.environ["BENCH_LS_TIMEOUT"]), **kw)

    LabelStudioClient.__init__ = _init_with_timeout

for name in CLIENT_CALLS:
    setattr(LabelStudioClient, name, timed(name, getattr(LabelStudioClient, name)))
learners.FrozenLearner.features = timed("cache_features", learners.FrozenLearner.features)
wiring.train_project = timed("round_job", wiring.train_project, rss=True)  # rq resolves it by name at run time
wiring.embed_project = timed("embed_job", wiring.embed_project, rss=True)

if __name__ == "__main__":
    raise SystemExit(main(["worker", *sys.argv[1:]]))
