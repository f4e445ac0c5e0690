"""DEVICE=auto (the images' and compose's setting) picks CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

import torch

from beal_backend.config import Settings
from beal_backend.wiring import scoring_config, train_config


def test_auto_and_unset_pick_the_available_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    for env in ({"DEVICE": "auto"}, {"DEVICE": ""}, {}):
        s = Settings.from_env(env)
        assert (train_config(s).device, scoring_config(s).device) == (expected, expected), env


def test_an_explicit_device_is_kept():
    s = Settings.from_env({"DEVICE": "cpu"})
    assert (train_config(s).device, scoring_config(s).device) == ("cpu", "cpu")
