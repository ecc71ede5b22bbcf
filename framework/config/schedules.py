"""The learning-rate schedule every optimizer plugin shares: linear warmup, then one decay shape.

One schedule implementation for all optimizers keeps a comparison fair: two optimizers differ in their
update rule, never in how their learning rate moves. The schedule is a factor applied through
`LambdaLR`, which multiplies each parameter group's own initial lr, so group multipliers (a backbone at
0.1x) carry through warmup and decay unchanged.

Step k (0-based; LambdaLR evaluates step 0 at construction and one more after every optimizer step):

- warmup (k < W): factor (k + 1) / W, so the first step already moves and step W - 1 runs at the
  full lr;
- then, with t = (k - W) / (total_steps - W) the fraction of the decay phase done (clamped to [0, 1]):
  cosine: floor + (1 - floor) * (1 + cos(pi t)) / 2;  poly: floor + (1 - floor) * (1 - t) ** power;
  step: gamma ** (number of milestones reached by t);  constant: 1.
  The factor reaches the floor at k = total_steps, i.e. after the last step, so no step is wasted at
  a zero learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEDULES = ("cosine", "step", "poly", "constant")
# Used where a config section has no schedule keys at all: such an optimizer trains at a constant lr.
_DEFAULTS: dict[str, Any] = {
    "schedule": "constant",
    "warmup_steps": 0,
    "warmup_fraction": 0.0,
    "eta_min_factor": 0.0,
    "decay_milestones": (0.9, 0.95),
    "decay_gamma": 0.1,
    "poly_power": 1.0,
}


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str = "cosine",
    warmup_steps: int = 0,
    *,
    eta_min_factor: float = 0.0,
    decay_milestones: Sequence[float] = (0.9, 0.95),
    decay_gamma: float = 0.1,
    poly_power: float = 1.0,
) -> float:
    """The factor that multiplies each group's base lr at optimizer step `step` (0-based).

    `eta_min_factor` is the floor of cosine and poly as a fraction of the base lr; `decay_milestones`
    are fractions of the decay phase at which the step schedule multiplies the lr by `decay_gamma`.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    done = min(max(step - warmup_steps, 0), decay_steps)
    t = done / decay_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return eta_min_factor + (1.0 - eta_min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "poly":
        return eta_min_factor + (1.0 - eta_min_factor) * (1.0 - t) ** poly_power
    if schedule == "step":
        # Compare in whole steps: 0.7 * 10 is 7.000000000000001 in floating point.
        reached = sum(done >= math.ceil(m * decay_steps - 1e-9) for m in decay_milestones)
        return decay_gamma**reached
    raise ValueError(f"optimizer.schedule: unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")


@dataclass(frozen=True)
class Schedule:
    """`lr_factor` with its settings bound: the callable handed to LambdaLR.

    A callable object rather than a lambda, because LambdaLR saves the attributes of callable objects
    in its state_dict, so a checkpoint records the schedule it was trained with.
    """

    total_steps: int
    schedule: str = "constant"
    warmup_steps: int = 0
    eta_min_factor: float = 0.0
    decay_milestones: tuple[float, ...] = (0.9, 0.95)
    decay_gamma: float = 0.1
    poly_power: float = 1.0

    def __call__(self, step: int) -> float:
        return lr_factor(
            step,
            self.total_steps,
            self.schedule,
            self.warmup_steps,
            eta_min_factor=self.eta_min_factor,
            decay_milestones=self.decay_milestones,
            decay_gamma=self.decay_gamma,
            poly_power=self.poly_power,
        )


def schedule_from_config(config_optimizer: Mapping[str, Any], total_steps: int) -> Schedule:
    """Read and check the schedule keys of the `optimizer` config section; every problem names its key."""

    def get(key: str) -> Any:
        value = config_optimizer.get(key)
        return _DEFAULTS[key] if value is None else value

    problems = []
    schedule = get("schedule")
    if schedule not in SCHEDULES:
        problems.append(f"optimizer.schedule: unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
    if not isinstance(total_steps, int) or total_steps < 1:
        problems.append(f"run.total_steps: must be a positive integer, got {total_steps!r}")
        total_steps = 1
    warmup_steps, warmup_fraction = get("warmup_steps"), float(get("warmup_fraction"))
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        problems.append(f"optimizer.warmup_steps: must be an integer >= 0, got {warmup_steps!r}")
        warmup_steps = 0
    if not 0.0 <= warmup_fraction < 1.0:
        problems.append(f"optimizer.warmup_fraction: must be in [0, 1), got {warmup_fraction!r}")
    elif warmup_fraction > 0:
        if warmup_steps > 0:
            problems.append("optimizer.warmup_steps and optimizer.warmup_fraction are both set; set only one")
        warmup_steps = round(warmup_fraction * total_steps)
    eta_min_factor = float(get("eta_min_factor"))
    if not 0.0 <= eta_min_factor <= 1.0:
        problems.append(f"optimizer.eta_min_factor: must be in [0, 1] (a fraction of the base lr), got {eta_min_factor!r}")
    milestones = tuple(float(m) for m in get("decay_milestones"))
    if any(not 0.0 < m <= 1.0 for m in milestones):
        problems.append(f"optimizer.decay_milestones: must be fractions of training in (0, 1], got {list(milestones)}")
    decay_gamma, poly_power = float(get("decay_gamma")), float(get("poly_power"))
    if decay_gamma <= 0:
        problems.append(f"optimizer.decay_gamma: must be > 0, got {decay_gamma!r}")
    if poly_power <= 0:
        problems.append(f"optimizer.poly_power: must be > 0, got {poly_power!r}")
    if problems:
        raise ValueError("; ".join(problems))
    return Schedule(total_steps, schedule, warmup_steps, eta_min_factor, milestones, decay_gamma, poly_power)


def build_scheduler(optimizer: Any, config_optimizer: Mapping[str, Any], total_steps: int) -> dict[str, Any]:
    """The Lightning scheduler dict for `optimizer`, stepped after every optimizer step.

    Always a scheduler, even for a constant lr, so every run logs the same lr trace ("lr/<group>").
    """
    from torch.optim.lr_scheduler import LambdaLR

    scheduler = LambdaLR(optimizer, schedule_from_config(config_optimizer, total_steps))
    return {"scheduler": scheduler, "interval": "step", "frequency": 1, "name": "lr"}


__all__ = ["SCHEDULES", "Schedule", "build_scheduler", "lr_factor", "schedule_from_config"]
