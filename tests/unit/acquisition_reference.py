"""The paper's equations written literally, as loops, and the probability arrays the property tests draw: the
reference the acquisition tests (per-text scores, registry) compare the vectorised code with."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def literal_ec(probs: np.ndarray) -> np.ndarray:
    """Eqs. 1, 2, 7, 8 as loops: R = 2^y - 1; pi-hat sorts labels by mean_t R descending (ties: lower
    index first); conf = sum_j R(Y^t_j) / pi-hat(j); EC = mean_t conf."""
    T, N, J = probs.shape
    out = np.zeros(N)
    for n in range(N):
        mean_r = [sum(2.0 ** float(probs[t, n, j]) - 1.0 for t in range(T)) / T for j in range(J)]
        order = sorted(range(J), key=lambda j: (-mean_r[j], j))
        position = {label: rank + 1 for rank, label in enumerate(order)}
        confs = [sum((2.0 ** float(probs[t, n, j]) - 1.0) / position[j] for j in range(J)) for t in range(T)]
        out[n] = sum(confs) / T
    return out


def literal_bald(probs: np.ndarray) -> np.ndarray:
    def h(p: float) -> float:
        return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))

    T, N, J = probs.shape
    return np.array(
        [
            sum(
                h(sum(probs[t, n, j] for t in range(T)) / T) - sum(h(probs[t, n, j]) for t in range(T)) / T
                for j in range(J)
            )
            for n in range(N)
        ]
    )


prob_values = st.one_of(
    st.floats(0.0, 1.0, allow_nan=False),
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),  # exact repeats create ties in pi-hat
)


@st.composite
def prob_arrays(draw, max_dim: int = 6):
    shape = (draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)))
    return draw(hnp.arrays(np.float64, shape, elements=prob_values))
