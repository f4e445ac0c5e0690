"""The two protocols of ``beal simulate``: when the rounds come, and which texts a round holds out.

- ``service`` (the default): the regime the service runs. A round after every ``SERVICE_BATCH`` new labels, up
  to ``SERVICE_REACH`` of the pool, each round trained as a service round trains (the service's settings, its
  stable held-out slice: ``service_rows``).
- ``paper``: the paper's Table 2 protocol, 5 % of the pool at random and 19 rounds of 5 %, with the paper's
  fixed-epoch training and no held-out slice (the published runs under docs/results/, which still resume).

Both start from ``INITIAL_SHARE`` of the pool labeled at random, the same texts for every strategy of a repeat.
"""

from __future__ import annotations

from collections.abc import Iterable

from beal_backend.engine import holdout

PROTOCOLS = ("service", "paper")
INITIAL_SHARE = 0.05  # random labels before the first round: 100 of a 2,000-text pool, the paper's 500 of 10,000
# TRAIN_EVERY = 10 enqueues a round after 10 new labels, and annotators go on labeling the old queue while it
# trains, so 10 to 20 labels go by between two models: 20 is that regime at half the rounds of 10
SERVICE_BATCH = 20
SERVICE_REACH = 0.75  # the service regime is followed up to 75 % of the pool: teams stop well before the end
PAPER_ROUNDS = 19
REPEATS = {"service": 6, "paper": 5}  # 6: three seeds can rank one method above and below random on one dataset
# names the held-out rule in a run's config.json: a run resumes only under the rule its rows were trained with
HELD_OUT = "task-hash, gate half out"  # v0.5: the gate half is held out of training too


def schedule(protocol: str, pool: int, initial: int | None, batch: int | None, rounds: int | None) -> tuple:
    """(initial, batch, rounds) of ``protocol`` for a pool of ``pool`` texts; a value given wins."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    share = max(1, round(INITIAL_SHARE * pool))
    initial = share if initial is None else initial
    if protocol == "paper":
        batch = share if batch is None else batch
        return initial, batch, PAPER_ROUNDS if rounds is None else rounds
    batch = SERVICE_BATCH if batch is None else batch
    if rounds is None:
        rounds = max(0, int((SERVICE_REACH * pool - initial) // max(batch, 1)))
    return initial, batch, rounds


def service_rows(labeled: Iterable[int], fraction: float, min_val: int) -> tuple[list[int], list[int]]:
    """What a service round does with the labeled set ``labeled`` (pool rows; row r plays Label Studio task r):
    (positions in ``labeled`` the learner is given, positions among those it early-stops on). The gate half of
    the held-out slice is given to no one here (the simulation has no version to gate against), as in a round,
    where only the gate looks at it. The one call of the service's held-out rule."""
    ids = [int(r) for r in labeled]
    return holdout.held_out_split(ids, fraction, min_val).training_rows(len(ids))
