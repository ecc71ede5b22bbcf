"""The learning-rate schedule of every run: linear warm-up, then one decay shape.

The schedule is part of the task's training recipe (the `schedule` config section, set in the task's
default.yaml), so two optimizers on one task differ in their update rule, never in how their learning
rate moves; an optimizer that needs another schedule replaces keys in its own default.yaml, and the run
records it in `schedule.overridden_by` (framework/config/recipe.py). The schedule is a factor applied
through `LambdaLR`, which multiplies each parameter group's own initial lr, so group multipliers (a
backbone at 0.1x) carry through warm-up and decay unchanged.

Step k (0-based; LambdaLR evaluates step 0 at construction and one more after every optimizer step),
with T the run's total steps and W the warm-up steps:

- warm-up (k < W): ramp (k + 1) / W, so the first step already moves and step W - 1 runs at the
  full lr;
- cosine and poly decay over the steps after the warm-up: with t = (k - W) / (T - W) (clamped to
  [0, 1]), cosine: floor + (1 - floor) * (1 + cos(pi t)) / 2;  poly: floor + (1 - floor) * (1 - t) ** power;
- step: gamma ** (number of milestones reached), the milestones being fractions of ALL T steps, warm-up
  included (as Mask2Former's "x0.1 at 90 % and 95 % of the iterations"); a milestone inside the warm-up
  scales its ramp;
- constant: 1 after the warm-up.
The cosine and poly factors reach the floor at k = T, i.e. after the last step, so no step is wasted at a
zero learning rate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEDULES = ("cosine", "step", "poly", "constant")


def lr_factor(
    step: int,
    total_steps: int,
    name: str = "cosine",
    warmup_steps: int = 0,
    *,
    eta_min_factor: float = 0.0,
    decay_milestones: Sequence[float] = (0.9, 0.95),
    decay_gamma: float = 0.1,
    poly_power: float = 1.0,
) -> float:
    """The factor that multiplies each group's base lr at optimizer step `step` (0-based).

    `eta_min_factor` is the floor of cosine and poly as a fraction of the base lr; `decay_milestones`
    are fractions of all `total_steps` (warm-up included) at which the step schedule multiplies the lr
    by `decay_gamma`.
    """
    ramp = (step + 1) / warmup_steps if step < warmup_steps else 1.0
    if name == "step":
        # Compare in whole steps: 0.7 * 10 is 7.000000000000001 in floating point.
        reached = sum(step >= math.ceil(m * total_steps - 1e-9) for m in decay_milestones)
        return ramp * decay_gamma**reached
    if name not in SCHEDULES:
        raise ValueError(f"schedule.name: unknown schedule {name!r} (known: {', '.join(SCHEDULES)})")
    if step < warmup_steps or name == "constant":
        return ramp
    decay_steps = max(1, total_steps - warmup_steps)
    t = min(step - warmup_steps, decay_steps) / decay_steps
    if name == "cosine":
        return eta_min_factor + (1.0 - eta_min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return eta_min_factor + (1.0 - eta_min_factor) * (1.0 - t) ** poly_power


@dataclass(frozen=True)
class Schedule:
    """`lr_factor` with its settings bound: the callable handed to LambdaLR.

    A callable object rather than a lambda, because LambdaLR saves the attributes of callable objects
    in its state_dict, so a checkpoint records the schedule it was trained with.
    """

    total_steps: int
    name: str = "cosine"
    warmup_steps: int = 0
    eta_min_factor: float = 0.0
    decay_milestones: tuple[float, ...] = (0.9, 0.95)
    decay_gamma: float = 0.1
    poly_power: float = 1.0

    def __call__(self, step: int) -> float:
        return lr_factor(
            step,
            self.total_steps,
            self.name,
            self.warmup_steps,
            eta_min_factor=self.eta_min_factor,
            decay_milestones=self.decay_milestones,
            decay_gamma=self.decay_gamma,
            poly_power=self.poly_power,
        )


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    # A section given by hand (a test, a benchmark) may leave keys out: they take the engine's defaults.
    from framework.config.schema import load_engine_defaults

    return load_engine_defaults()["schedule"]


def _check_section(section: Any) -> None:
    """A plugin written for the old layout passes its optimizer section: say what to pass instead."""
    if not isinstance(section, Mapping) or "name" not in section or "learning_rate" in section:
        raise TypeError(
            "the schedule is read from the `schedule` config section, not the optimizer's: call "
            "build_scheduler(optimizer, config.schedule, config.run.total_steps) "
            "(schedule_from_config(config.schedule, total_steps))"
        )


def _warmup(section: Mapping[str, Any], total_steps: int | None, problems: list[str]) -> int:
    """The warm-up in steps; a warm-up that takes the whole run is a problem (known when total_steps is)."""
    steps, fraction = section["warmup_steps"], section["warmup_fraction"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        problems.append(f"schedule.warmup_steps: must be an integer >= 0, got {steps!r}")
        steps = 0
    if not 0.0 <= fraction < 1.0:
        problems.append(f"schedule.warmup_fraction: must be in [0, 1), got {fraction!r}")
    elif fraction > 0:
        if steps > 0:
            problems.append("schedule.warmup_steps and schedule.warmup_fraction are both set; set only one")
        if total_steps is None:
            return 0
        steps = round(fraction * total_steps)
        if steps >= total_steps:
            problems.append(f"schedule.warmup_fraction: {fraction} of the run's {total_steps} steps is {steps} warm-up "
                            f"steps, the whole run; use a smaller fraction")
        return steps
    if total_steps is not None and steps >= total_steps:
        problems.append(f"schedule.warmup_steps: {steps} warm-up steps take the whole run of {total_steps} steps; "
                        f"use fewer (or schedule.warmup_fraction) or train longer")
    return steps


def schedule_problems(section: Mapping[str, Any], total_steps: int | None = None) -> list[str]:
    """Every problem of a `schedule` section, each naming its key. `total_steps` None: the run's length is
    not known yet (a task training by epochs, before its data is read), so the warm-up is not compared."""
    _check_section(section)
    section = {**_defaults(), **{k: v for k, v in section.items() if v is not None}}
    problems: list[str] = []
    if section["name"] not in SCHEDULES:
        problems.append(f"schedule.name: unknown schedule {section['name']!r} (known: {', '.join(SCHEDULES)})")
    _warmup(section, total_steps, problems)
    if not 0.0 <= section["eta_min_factor"] <= 1.0:
        problems.append(f"schedule.eta_min_factor: must be in [0, 1] (a fraction of the base lr), got {section['eta_min_factor']!r}")
    milestones = list(section["decay_milestones"])
    if any(isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 < m <= 1.0 for m in milestones):
        problems.append(f"schedule.decay_milestones: must be fractions of all steps in (0, 1], got {milestones}")
    elif milestones != sorted(milestones):
        problems.append(f"schedule.decay_milestones: must be in increasing order, got {milestones}")
    for key in ("decay_gamma", "poly_power"):
        if not section[key] > 0:
            problems.append(f"schedule.{key}: must be > 0, got {section[key]!r}")
    return problems


def schedule_from_config(section: Mapping[str, Any], total_steps: int) -> Schedule:
    """The schedule of a run of `total_steps` optimizer steps from its `schedule` config section
    (`config.schedule`); raises one ValueError naming every bad key."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"run.total_steps: must be a positive integer, got {total_steps!r}")
    problems = schedule_problems(section, total_steps)
    if problems:
        raise ValueError("; ".join(problems))
    values = {**_defaults(), **{k: v for k, v in section.items() if v is not None}}
    warmup = _warmup(values, total_steps, [])
    return Schedule(total_steps, values["name"], warmup, float(values["eta_min_factor"]),
                    tuple(float(m) for m in values["decay_milestones"]), float(values["decay_gamma"]),
                    float(values["poly_power"]))


def build_scheduler(optimizer: Any, section: Mapping[str, Any], total_steps: int) -> dict[str, Any]:
    """The Lightning scheduler dict for `optimizer`, stepped after every optimizer step; `section` is the
    run's `config.schedule`.

    Always a scheduler, even for a constant lr, so every run logs the same lr trace ("lr/<group>").
    """
    from torch.optim.lr_scheduler import LambdaLR

    scheduler = LambdaLR(optimizer, schedule_from_config(section, total_steps))
    return {"scheduler": scheduler, "interval": "step", "frequency": 1, "name": "lr"}


def describe_schedule(section: Mapping[str, Any]) -> str:
    """The schedule in a few words, for `framework run --dry-run`: `warm-up 5%, then poly (power 1)`,
    `step x0.1 at 90%, 95% of all steps`, `constant (adamw_schedulefree replaced name)`."""
    steps, fraction = section.get("warmup_steps") or 0, section.get("warmup_fraction") or 0.0
    warmup = f"warm-up {steps} steps, then " if steps else f"warm-up {fraction * 100:g}%, then " if fraction else ""
    name, floor = section.get("name"), section.get("eta_min_factor") or 0.0
    shape = {
        "cosine": "cosine" + (f" to {floor:g}x" if floor else ""),
        "poly": f"poly (power {section.get('poly_power', 1.0):g})" + (f" to {floor:g}x" if floor else ""),
        "step": f"step x{section.get('decay_gamma', 0.1):g} at "
                + ", ".join(f"{m * 100:g}%" for m in section.get("decay_milestones") or ()) + " of all steps",
    }.get(name, str(name))
    by: dict[str, list[str]] = {}
    for key, optimizer in (section.get("overridden_by") or {}).items():
        by.setdefault(optimizer, []).append(key)
    replaced = "".join(f" ({optimizer} replaced {', '.join(keys)})" for optimizer, keys in by.items())
    return warmup + shape + replaced


__all__ = ["SCHEDULES", "Schedule", "build_scheduler", "describe_schedule", "lr_factor", "schedule_from_config",
           "schedule_problems"]
