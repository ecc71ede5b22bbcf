# python -m pytest tests/test_schedulers.py
"""Learning-rate schedules, checked by the lr trace of a real optimizer with two groups."""

from __future__ import annotations

import math

import pytest
import torch

from framework.config import Node
from framework.config.schedules import build_scheduler, lr_factor

BASE = {"group1": 1.0, "group2": 0.1}  # two groups, the second at a 0.1x multiplier
TOTAL = 100


def config(**keys: object) -> Node:
    section = {"schedule": "cosine", "warmup_steps": 0, "warmup_fraction": 0.0, "eta_min_factor": 0.0,
               "decay_milestones": [0.9, 0.95], "decay_gamma": 0.1, "poly_power": 1.0}
    section.update(keys)
    return Node({"optimizer": section, "run": {"total_steps": TOTAL}})


def trace(total: int = TOTAL, **keys: object) -> dict[str, list[float]]:
    """The lr of each group used at each of `total` steps, plus the lr after the last step."""
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    groups = [{"params": [p], "lr": lr, "name": name} for p, (name, lr) in zip(params, BASE.items())]
    optimizer = torch.optim.SGD(groups)
    cfg = config(**keys)
    entry = build_scheduler(optimizer, cfg.optimizer, total)
    assert entry["interval"] == "step" and entry["frequency"] == 1 and entry["name"] == "lr"
    lrs: dict[str, list[float]] = {name: [] for name in BASE}
    for _ in range(total + 1):
        for pg in optimizer.param_groups:
            lrs[pg["name"]].append(pg["lr"])
        optimizer.step()
        entry["scheduler"].step()
    return lrs


def test_warmup_ramps_linearly_per_group() -> None:
    lrs = trace(schedule="constant", warmup_steps=10)
    for name, base in BASE.items():
        assert lrs[name][:10] == pytest.approx([base * (k + 1) / 10 for k in range(10)])
        assert lrs[name][10:] == pytest.approx([base] * (TOTAL + 1 - 10))


def test_warmup_fraction_converts_to_steps() -> None:
    assert trace(schedule="constant", warmup_fraction=0.1) == trace(schedule="constant", warmup_steps=10)


def test_warmup_steps_and_fraction_together_raise() -> None:
    with pytest.raises(ValueError, match="warmup_fraction"):
        trace(warmup_steps=5, warmup_fraction=0.1)


def test_cosine_reaches_floor_scaled_per_group() -> None:
    lrs = trace(schedule="cosine", eta_min_factor=0.1)
    for name, base in BASE.items():
        assert lrs[name][0] == pytest.approx(base)
        assert lrs[name][TOTAL // 2] == pytest.approx(base * (0.1 + 0.9 * 0.5))
        assert lrs[name][-1] == pytest.approx(0.1 * base)  # after the last step
        assert lrs[name][-2] > 0.1 * base  # the last step itself still moves
        assert all(a >= b for a, b in zip(lrs[name], lrs[name][1:]))


def test_cosine_after_warmup_starts_at_peak() -> None:
    lrs = trace(schedule="cosine", warmup_steps=20)
    assert lrs["group1"][19] == pytest.approx(1.0)
    assert lrs["group1"][20] == pytest.approx(1.0)
    assert lrs["group1"][60] == pytest.approx(0.5)  # halfway through the 80 decay steps
    assert lrs["group1"][-1] == pytest.approx(0.0, abs=1e-12)


def test_step_decay_at_90_and_95_percent() -> None:
    lrs = trace(schedule="step")
    for name, base in BASE.items():
        assert lrs[name][:90] == pytest.approx([base] * 90)
        assert lrs[name][90:95] == pytest.approx([base * 0.1] * 5)
        assert lrs[name][95:] == pytest.approx([base * 0.01] * (TOTAL + 1 - 95))


def test_step_milestones_are_exact_in_whole_steps() -> None:
    # 0.7 * 10 is 7.000000000000001 in floating point: the drop must still happen at step 7.
    factors = [lr_factor(k, 10, "step", decay_milestones=[0.7], decay_gamma=0.5) for k in range(10)]
    assert factors == [1.0] * 7 + [0.5] * 3


def test_poly_decay() -> None:
    lrs = trace(schedule="poly", poly_power=2.0, eta_min_factor=0.0)
    for name, base in BASE.items():
        expected = [base * (1 - k / TOTAL) ** 2 for k in range(TOTAL + 1)]
        assert lrs[name] == pytest.approx(expected)


def test_constant_without_warmup_is_still_a_scheduler() -> None:
    lrs = trace(schedule="constant")
    for name, base in BASE.items():
        assert lrs[name] == pytest.approx([base] * (TOTAL + 1))


def test_steps_past_the_end_stay_at_the_floor() -> None:
    assert lr_factor(TOTAL + 50, TOTAL, "cosine", eta_min_factor=0.2) == pytest.approx(0.2)
    assert lr_factor(TOTAL // 4, TOTAL, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_unknown_schedule_names_key_and_choices() -> None:
    with pytest.raises(ValueError, match=r"optimizer\.schedule.*cosine, step, poly, constant"):
        trace(schedule="linear")
    with pytest.raises(ValueError, match=r"optimizer\.schedule"):
        lr_factor(0, 10, "linear")


def test_scheduler_state_dict_records_the_schedule() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    entry = build_scheduler(optimizer, config(schedule="step").optimizer, TOTAL)
    saved = entry["scheduler"].state_dict()["lr_lambdas"][0]
    assert saved["schedule"] == "step" and saved["total_steps"] == TOTAL
