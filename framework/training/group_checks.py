"""Does an optimizer plugin honour the parameter groups it is given?

`configure_optimizers(model, config)` receives a GroupedModel and must build its optimizer from
`model.param_groups(lr, weight_decay)`: every trainable parameter in exactly one torch group, the
no-decay parameters (biases, norms, embeddings) at weight decay 0 and every task group at its learning
rate multiplier. An optimizer built from `model.parameters()` trains without an error while decaying the
norms and ignoring a backbone's 0.1x, so these checks compare what the optimizer holds, parameter by
parameter, with what the GroupedModel says. Used by the contract check (framework/training/contract.py)
and the conformance suite.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from framework.config import Node
from framework.errors import one_line
from framework.training.parameter_groups import GroupedModel, ParameterGroup

PROBE_WEIGHT_DECAY = 0.1  # used on the probe when the optimizer's default is 0: a decay of 0 hides a wrong split
PROBE_LR_MULTIPLIER = 0.1  # the probe's "head" group, as a task gives a pretrained backbone
TOTAL_STEPS = 100  # what the optimizer's schedule is built for: any number of steps will do


class _Probe(nn.Module):
    """A weight matrix, a bias, a LayerNorm and a head: one parameter of each kind the groups treat apart."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.norm(self.body(x)))


def probe_model() -> GroupedModel:
    """A small GroupedModel with a task group at PROBE_LR_MULTIPLIER and a no-decay split."""
    net = _Probe()
    return GroupedModel(net, [ParameterGroup.from_prefix(net, "head", lr_multiplier=PROBE_LR_MULTIPLIER)])


def torch_optimizers(result: Any) -> list[torch.optim.Optimizer] | None:
    """The torch optimizers in what `configure_optimizers` returned, in each form Lightning accepts (an
    optimizer, a dict with "optimizer", a list of either, or a pair (optimizers, schedulers)); None for
    anything else."""
    if isinstance(result, torch.optim.Optimizer):
        return [result]
    if isinstance(result, dict):
        return [result["optimizer"]] if isinstance(result.get("optimizer"), torch.optim.Optimizer) else None
    if isinstance(result, (list, tuple)) and result:
        if len(result) == 2 and all(isinstance(part, (list, tuple)) for part in result):
            result = result[0]  # ([optimizers], [schedulers])
        found: list[torch.optim.Optimizer] = []
        for item in result:
            inner = torch_optimizers(item) if isinstance(item, (torch.optim.Optimizer, dict)) else None
            if inner is None:
                return None
            found += inner
        return found
    return None


def with_total_steps(config: Node, weight_decay: float | None = None) -> Node:
    """`config` as the engine hands it to an optimizer (run.total_steps set), optionally with another decay."""
    run = config["run"].to_dict() if "run" in config else {}
    optimizer = config["optimizer"].to_dict()
    if weight_decay is not None:
        optimizer["weight_decay"] = weight_decay
    # longer than the recipe's warm-up (a baseline warms up for 1,500 steps), which must fit in the run
    warmup = config["schedule"].get("warmup_steps") if "schedule" in config else None
    total = TOTAL_STEPS + (warmup if isinstance(warmup, int) and warmup > 0 else 0)
    return config.replace(run={**run, "total_steps": total}, optimizer=optimizer)


def configure(configure_optimizers: Any, model: GroupedModel, config: Node, where: str) -> tuple[list, list[str]]:
    """Call the plugin; its torch optimizers, or one problem line saying what came back instead."""
    try:
        result = configure_optimizers(model, config)
    except Exception as exc:  # the plugin's own code: report it as its problem, go on with the others
        return [], [f"{where}: configure_optimizers(model, config) raised {one_line(exc, 300)}"]
    optimizers = torch_optimizers(result)
    if optimizers is None:
        return [], [f"{where}: configure_optimizers returned {type(result).__name__}; expected a torch.optim.Optimizer or "
                    f"a dict {{'optimizer': ..., 'lr_scheduler': ...}} (what LightningModule.configure_optimizers returns)"]
    return optimizers, []


def _held(optimizers: list[torch.optim.Optimizer]) -> tuple[dict[int, tuple[float, float]], set[int]]:
    """Each parameter's (learning rate before any schedule, weight decay), and those held twice."""
    held: dict[int, tuple[float, float]] = {}
    twice: set[int] = set()
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            lr = float(group.get("initial_lr", group.get("lr", 0.0)))  # initial_lr: the lr before a warm-up scaled it
            for param in group["params"]:
                if id(param) in held:
                    twice.add(id(param))
                held[id(param)] = (lr, float(group.get("weight_decay", 0.0) or 0.0))
    return held, twice


def group_problems(optimizers: list[torch.optim.Optimizer], model: GroupedModel, weight_decay: Any, where: str) -> list[str]:
    """One line per way the optimizers' groups differ from `model.param_groups(lr, weight_decay)`."""
    expected = {id(p): (name, g) for g in model.parameter_groups() for name, p in zip(g.names, g.params)}
    held, twice = _held(optimizers)
    fix = "build the optimizer from model.param_groups(lr, weight_decay), not model.parameters()"
    problems = []
    missing = [name for key, (name, _) in expected.items() if key not in held]
    if missing:
        problems.append(f"{where}: {len(missing)} trainable parameter(s) are in no optimizer group (e.g. {missing[0]}); {fix}")
    doubled = [name for key, (name, _) in expected.items() if key in twice]
    if doubled:
        problems.append(f"{where}: {len(doubled)} parameter(s) are in two optimizer groups (e.g. {doubled[0]}); {fix}")
    decay = float(weight_decay) if isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool) else None
    ratios: dict[str, float] = {}
    for key, (name, group) in expected.items():
        if key not in held:
            continue
        lr, wd = held[key]
        want = decay * group.wd_multiplier if decay is not None else (0.0 if group.wd_multiplier == 0 else wd)
        if not math.isclose(wd, want, rel_tol=1e-6, abs_tol=1e-12):
            problems.append(f"{where}: parameter {name} (group {group.name}) has weight_decay {wd:g}, expected {want:g} "
                            f"(no_decay parameters: 0); {fix}")
            break
        if group.lr_multiplier == 0:
            ratios.setdefault(f"{name} (group {group.name}, lr_multiplier 0)", lr)
        else:
            ratios[f"{name} (group {group.name}, lr_multiplier {group.lr_multiplier:g})"] = lr / group.lr_multiplier
    base = next(iter(ratios.values()), None)
    for label, ratio in ratios.items():
        if base is not None and not math.isclose(ratio, base, rel_tol=1e-6, abs_tol=1e-12) and not label.endswith("lr_multiplier 0)"):
            problems.append(f"{where}: parameter {label} has lr {ratio:g} x its multiplier, other groups {base:g}: "
                            f"the lr multipliers are ignored; {fix}")
            break
    return problems


def optimizer_problems(configure_optimizers: Any, model: GroupedModel, config: Node, where: str) -> list[str]:
    """The optimizer plugin on `model` (a task's, or the probe) with `config`: what it returns and its groups."""
    optimizers, problems = configure(configure_optimizers, model, with_total_steps(config), where)
    return problems or group_problems(optimizers, model, config.optimizer.get("weight_decay"), where)


def probe_problems(configure_optimizers: Any, config: Node, where: str) -> list[str]:
    """The optimizer plugin on the probe, with a weight decay > 0: ignored groups show even where no task
    declares a multiplier and the optimizer's default decay is 0."""
    decay = config.optimizer.get("weight_decay")
    if isinstance(decay, (int, float)) and not isinstance(decay, bool) and decay == 0:
        decay = PROBE_WEIGHT_DECAY
    model = probe_model()
    optimizers, problems = configure(configure_optimizers, model, with_total_steps(config, decay if decay is not None else None), where)
    return problems or group_problems(optimizers, model, decay, where)
