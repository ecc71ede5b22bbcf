# python -m pytest tests/test_schedulers.py
"""Learning-rate schedules (the `schedule` config section), checked by the lr trace of a real optimizer with
two groups."""

from __future__ import annotations

import math

import pytest
import torch

from framework.config import Node
from framework.config.schedules import build_scheduler, lr_factor, schedule_from_config

BASE = {"group1": 1.0, "group2": 0.1}  # two groups, the second at a 0.1x multiplier
TOTAL = 100


def config(**keys: object) -> Node:
    section = {"name": "cosine", "warmup_steps": 0, "warmup_fraction": 0.0, "eta_min_factor": 0.0,
               "decay_milestones": [0.9, 0.95], "decay_gamma": 0.1, "poly_power": 1.0, "overridden_by": {}}
    section.update(keys)
    return Node({"schedule": section, "run": {"total_steps": TOTAL}})


def trace(total: int = TOTAL, **keys: object) -> dict[str, list[float]]:
    """The lr of each group used at each of `total` steps, plus the lr after the last step."""
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    groups = [{"params": [p], "lr": lr, "name": name} for p, (name, lr) in zip(params, BASE.items())]
    optimizer = torch.optim.SGD(groups)
    cfg = config(**keys)
    entry = build_scheduler(optimizer, cfg.schedule, total)
    assert entry["interval"] == "step" and entry["frequency"] == 1 and entry["name"] == "lr"
    lrs: dict[str, list[float]] = {name: [] for name in BASE}
    for _ in range(total + 1):
        for pg in optimizer.param_groups:
            lrs[pg["name"]].append(pg["lr"])
        optimizer.step()
        entry["scheduler"].step()
    return lrs


def test_warmup_ramps_linearly_per_group() -> None:
    lrs = trace(name="constant", warmup_steps=10)
    for name, base in BASE.items():
        assert lrs[name][:10] == pytest.approx([base * (k + 1) / 10 for k in range(10)])
        assert lrs[name][10:] == pytest.approx([base] * (TOTAL + 1 - 10))


def test_warmup_fraction_converts_to_steps() -> None:
    assert trace(name="constant", warmup_fraction=0.1) == trace(name="constant", warmup_steps=10)


def test_warmup_steps_and_fraction_together_raise() -> None:
    with pytest.raises(ValueError, match="warmup_fraction"):
        trace(warmup_steps=5, warmup_fraction=0.1)


def test_cosine_reaches_floor_scaled_per_group() -> None:
    lrs = trace(name="cosine", eta_min_factor=0.1)
    for name, base in BASE.items():
        assert lrs[name][0] == pytest.approx(base)
        assert lrs[name][TOTAL // 2] == pytest.approx(base * (0.1 + 0.9 * 0.5))
        assert lrs[name][-1] == pytest.approx(0.1 * base)  # after the last step
        assert lrs[name][-2] > 0.1 * base  # the last step itself still moves
        assert all(a >= b for a, b in zip(lrs[name], lrs[name][1:]))


def test_cosine_after_warmup_starts_at_peak() -> None:
    lrs = trace(name="cosine", warmup_steps=20)
    assert lrs["group1"][19] == pytest.approx(1.0)
    assert lrs["group1"][20] == pytest.approx(1.0)
    assert lrs["group1"][60] == pytest.approx(0.5)  # halfway through the 80 decay steps
    assert lrs["group1"][-1] == pytest.approx(0.0, abs=1e-12)


def test_step_decay_at_90_and_95_percent() -> None:
    lrs = trace(name="step")
    for name, base in BASE.items():
        assert lrs[name][:90] == pytest.approx([base] * 90)
        assert lrs[name][90:95] == pytest.approx([base * 0.1] * 5)
        assert lrs[name][95:] == pytest.approx([base * 0.01] * (TOTAL + 1 - 95))


def test_step_milestones_are_fractions_of_all_steps_warmup_included() -> None:
    # Mask2Former's "x0.1 at 90 % and 95 % of the iterations": with a warm-up of 20 steps the drops stay at
    # steps 90 and 95 (not 20 + 0.9 x 80 = 92 and 96).
    lrs = trace(name="step", warmup_steps=20)
    assert lrs["group1"][:20] == pytest.approx([(k + 1) / 20 for k in range(20)])
    assert lrs["group1"][20:90] == pytest.approx([1.0] * 70)
    assert lrs["group1"][90:95] == pytest.approx([0.1] * 5)
    assert lrs["group1"][95:] == pytest.approx([0.01] * (TOTAL + 1 - 95))
    # a milestone inside the warm-up scales its ramp
    assert lr_factor(4, 100, "step", 10, decay_milestones=[0.03], decay_gamma=0.5) == pytest.approx(0.5 * 5 / 10)


def test_a_warmup_as_long_as_the_run_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"schedule\.warmup_steps: 100 warm-up steps take the whole run of 100 steps"):
        trace(warmup_steps=TOTAL)
    with pytest.raises(ValueError, match=r"schedule\.warmup_fraction: 0\.999 of the run's 100 steps"):
        trace(warmup_fraction=0.999)
    assert schedule_from_config(config(warmup_steps=TOTAL - 1).schedule, TOTAL).warmup_steps == TOTAL - 1


def test_the_optimizer_section_is_refused_with_the_right_call() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    section = {"name": "adamw_baseline", "learning_rate": 1e-3, "weight_decay": 0.01}
    with pytest.raises(TypeError, match=r"build_scheduler\(optimizer, config\.schedule, config\.run\.total_steps\)"):
        build_scheduler(optimizer, section, TOTAL)
    with pytest.raises(TypeError, match="config.schedule"):
        schedule_from_config({"learning_rate": 1e-3}, TOTAL)


def test_step_milestones_are_exact_in_whole_steps() -> None:
    # 0.7 * 10 is 7.000000000000001 in floating point: the drop must still happen at step 7.
    factors = [lr_factor(k, 10, "step", decay_milestones=[0.7], decay_gamma=0.5) for k in range(10)]
    assert factors == [1.0] * 7 + [0.5] * 3


def test_poly_decay() -> None:
    lrs = trace(name="poly", poly_power=2.0, eta_min_factor=0.0)
    for name, base in BASE.items():
        expected = [base * (1 - k / TOTAL) ** 2 for k in range(TOTAL + 1)]
        assert lrs[name] == pytest.approx(expected)


def test_constant_without_warmup_is_still_a_scheduler() -> None:
    lrs = trace(name="constant")
    for name, base in BASE.items():
        assert lrs[name] == pytest.approx([base] * (TOTAL + 1))


def test_steps_past_the_end_stay_at_the_floor() -> None:
    assert lr_factor(TOTAL + 50, TOTAL, "cosine", eta_min_factor=0.2) == pytest.approx(0.2)
    assert lr_factor(TOTAL // 4, TOTAL, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_unknown_schedule_names_key_and_choices() -> None:
    with pytest.raises(ValueError, match=r"schedule\.name: unknown schedule 'linear' \(known: cosine, step, poly, constant\)"):
        trace(name="linear")
    with pytest.raises(ValueError, match=r"schedule\.name"):
        lr_factor(0, 10, "linear")


def test_scheduler_state_dict_records_the_schedule() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    entry = build_scheduler(optimizer, config(name="step").schedule, TOTAL)
    saved = entry["scheduler"].state_dict()["lr_lambdas"][0]
    assert saved["name"] == "step" and saved["total_steps"] == TOTAL
