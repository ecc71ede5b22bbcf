"""Which configuration is best: each task's scores, configurations (runs that differ only in their
seed), their statistics over seeds and a Student-t interval of the mean.

    load_runs records -> Scoring per task -> Configuration per task x optimizer x hyperparameter values
        -> pick: each optimizer's configuration, chosen on the validation metric

The rules are docs/protocol.md (PROTOCOL_VERSION): a configuration is chosen by the seed mean of a
validation metric (`evaluation.select`, default task.target_metric), never by the test metric it then
reports; one whose seeds did not all finish is chosen only when no configuration of the optimizer
finished every seed; a diverged seed is the worst possible score. Shared by the heatmap's box, the
best-configuration table, the learning curves and performance profiles, so that they all call the same
configuration "best". Knows nothing about any task: the metrics come from each run's resolved
`evaluation` and `task` sections. scipy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from framework.config.grid import NON_IDENTITY
from framework.errors import FrameworkError

PROTOCOL_VERSION = 1  # docs/protocol.md; raise it whenever a rule there changes what a result means
SEED = "engine.seed"
INTERVAL_LEVEL = 0.95
PRUNED = "pruned"  # a search trial its pruner stopped early: no result, not a failure, never chosen
# Record keys that are not hyperparameters: identity, bookkeeping and the plugin names.
_BOOKKEEPING = {"task", "optimizer", "run_id", "state", "error", "run_dir", "task.name", "optimizer.name", SEED}


@dataclass(frozen=True)
class Scoring:
    """How one task's runs are scored, read from their `evaluation` and `task` sections."""

    task: str
    column: str  # the reported (test) score column of a run record, e.g. best/test_acc
    mode: str  # max or min: which direction is better
    spec: str  # format spec of the numbers, e.g. .3f
    target: float | None  # evaluation.target: a value of target_metric that counts as reached
    target_metric: str | None  # task.target_metric, logged at each validation (val_acc)
    target_mode: str  # task.target_metric_mode
    select_column: str | None = None  # the validation column configurations are chosen by, e.g. best/val_acc
    select_mode: str = "max"

    @property
    def better(self) -> str:
        return "higher" if self.mode == "max" else "lower"


@dataclass
class Configuration:
    """The runs of one task x optimizer x hyperparameter values, one per seed."""

    task: str
    optimizer: str
    values: dict[str, Any]  # every hyperparameter of the configuration (dotted key -> value)
    runs: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # the finite test scores of the runs that are done
    seeds: list[Any] = field(default_factory=list)  # the seeds of those scores, in the same order
    selects: list[float] = field(default_factory=list)  # the finite validation scores of the runs that are done
    n_seeds: int = 0  # seeds the task was run with: a seed without a run is missing

    @property
    def n_done(self) -> int:
        return len(self.scores)

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def states(self) -> Counter:
        return Counter(str(run.get("state")) for run in self.runs)

    @property
    def n_diverged(self) -> int:
        return self.states["diverged"]

    @property
    def pruned(self) -> bool:
        """A run of it was pruned by its search: the trial was stopped early and is never chosen."""
        return self.states[PRUNED] > 0

    @property
    def complete(self) -> bool:
        """Every seed of the task done, with both its validation and its test score."""
        expected = max(self.n_seeds, self.n_runs)
        return self.n_runs == expected and len(self.selects) == len(self.scores) == expected

    def why_incomplete(self) -> str:
        """`1 diverged, 1 failed, 1 missing`: the seeds that did not give a score, by what happened."""
        counts = Counter({s: n for s, n in self.states.items() if s != "done"})
        unscored = self.states["done"] - min(len(self.scores), len(self.selects))
        if unscored:
            counts["without a score"] = unscored
        missing = self.n_seeds - self.n_runs
        if missing > 0:
            counts["missing"] = missing
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    @property
    def mean(self) -> float | None:
        return _mean(self.scores)

    @property
    def select_mean(self) -> float | None:
        return _mean(self.selects)

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (n - 1), None below two seeds."""
        if len(self.scores) < 2:
            return None
        mean = sum(self.scores) / len(self.scores)
        return math.sqrt(sum((s - mean) ** 2 for s in self.scores) / (len(self.scores) - 1))

    def label(self, keys: list[str]) -> str:
        """`optimizer.learning_rate=0.01, optimizer.weight_decay=0` over `keys` (the ones that vary)."""
        return ", ".join(f"{k}={label(self.values.get(k))}" for k in keys) or "(single configuration)"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def scoring(task: str, runs: list[dict[str, Any]]) -> Scoring:
    """The task's Scoring, from its first run's config; FrameworkError for a missing or bad setting."""
    first = runs[0]
    metric = first.get("evaluation.plot.metric")
    if not metric:
        raise FrameworkError(f"task '{task}' sets no evaluation.plot.metric (set it in its default.yaml)")
    mode = first.get("evaluation.plot.test_metric_mode") or "max"
    if mode not in ("max", "min"):
        raise FrameworkError(f"task '{task}': evaluation.plot.test_metric_mode is '{mode}' (known: max, min)")
    spec = str(first.get("evaluation.plot.format") or ".3f")
    if not (spec[-1].isalpha() or spec[-1] == "%"):
        spec += "f"  # "2.1" means fixed-point
    try:
        format(1.0, spec)
    except ValueError:
        raise FrameworkError(f"task '{task}': evaluation.plot.format '{spec}' is no format spec like .3f") from None
    target = first.get("evaluation.target")
    target_mode = first.get("task.target_metric_mode") or "max"
    target_mode = target_mode if target_mode in ("max", "min") else "max"
    select, select_mode = select_metric(task, first, target_mode)
    checkpoint = first.get("evaluation.checkpoint") or "best"
    return Scoring(
        task=task,
        column=f"{checkpoint}/{metric}",
        mode=mode,
        spec=spec,
        target=None if target is None or _missing(target) else float(target),
        target_metric=first.get("task.target_metric"),
        target_mode=target_mode,
        select_column=f"{checkpoint}/{select}",
        select_mode=select_mode,
    )


def select_metric(task: str, first: dict[str, Any], target_mode: str) -> tuple[str, str]:
    """The validation metric configurations are chosen by and its direction (evaluation.select and
    evaluation.select_mode, else task.target_metric and its mode); FrameworkError unless it is val_*."""
    select = first.get("evaluation.select")
    select = None if _missing(select) else select
    mode = first.get("evaluation.select_mode")
    mode = None if _missing(mode) else mode
    if select is None:
        select, mode = first.get("task.target_metric"), mode or target_mode
    if not select:
        raise FrameworkError(f"task '{task}' names no validation metric to choose configurations by "
                             "(set task.target_metric or evaluation.select)")
    if not str(select).startswith("val_"):
        raise FrameworkError(f"task '{task}': configurations are chosen on the validation split, but the "
                             f"selection metric is '{select}' (set evaluation.select to a val_* metric)")
    return str(select), mode if mode in ("max", "min") else target_mode


def by_task(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[run["task"]].append(run)
    return dict(sorted(grouped.items()))


def hyperparameters(runs: list[dict[str, Any]]) -> list[str]:
    """Config keys of the runs that change what a run computes, the seed left out."""
    keys = set().union(*runs) - _BOOKKEEPING
    # NON_IDENTITY holds a search trial's section {study, strategy, trial} too: which trial a run is, not
    # what it computes (two trials that drew the same values are one configuration)
    return sorted(k for k in keys if "/" not in k and not any(k == p or k.startswith(p + ".") for p in NON_IDENTITY))


def seed_count(runs: list[dict[str, Any]]) -> int:
    """How many seeds a task was run with: each configuration should have a run for every one."""
    return len({hashable(run.get(SEED)) for run in runs})


def configurations(runs: list[dict[str, Any]], score: Scoring | None = None) -> list[Configuration]:
    """One Configuration per optimizer x hyperparameter values among one task's runs, sorted; without a
    `score` they hold the runs only (enough to find the grid's axes)."""
    keys = hyperparameters(runs)
    groups: dict[tuple, Configuration] = {}
    n_seeds = seed_count(runs)
    for run in sorted(runs, key=lambda r: sort_key(hashable(r.get(SEED)))):  # in seed order, whatever the folders' order
        key = (run["optimizer"], *(hashable(run.get(k)) for k in keys))
        config = groups.get(key)
        if config is None:
            values = {k: run.get(k) for k in keys if not _missing(run.get(k))}
            config = groups[key] = Configuration(run["task"], run["optimizer"], values, n_seeds=n_seeds)
        add_run(config, run, score)
    return sorted(groups.values(), key=lambda c: (c.optimizer, [sort_key(hashable(c.values.get(k))) for k in keys]))


def add_run(config: Configuration, run: dict[str, Any], score: Scoring | None) -> None:
    """Count `run` in `config`: its test and validation scores when it is done and they are numbers."""
    config.runs.append(run)
    if score is None or run.get("state") != "done":
        return
    value, select = _number(run.get(score.column)), _number(run.get(score.select_column))
    if value is not None:
        config.scores.append(value)
        config.seeds.append(run.get(SEED))
    if select is not None:
        config.selects.append(select)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def varying_keys(configs: list[Configuration]) -> list[str]:
    """Hyperparameters with more than one value among the configurations of one optimizer."""
    per_optimizer: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    keys = set().union(*(c.values for c in configs))
    for config in configs:
        for key in keys:
            per_optimizer[config.optimizer][key].add(hashable(config.values.get(key)))
    return sorted({k for keys in per_optimizer.values() for k, values in keys.items() if len(values) > 1})


def selection_key(config: Configuration, select_mode: str) -> tuple:
    """Smaller is better: complete configurations first, then those with a validation score; a diverged
    seed is the worst score there is, so fewer diverged seeds first; then the validation seed mean."""
    mean = config.select_mean
    oriented = math.inf if mean is None else (-mean if select_mode == "max" else mean)
    return (not config.complete, mean is None and not config.n_diverged, config.n_diverged, oriented)


def pick(configs: list[Configuration], select_mode: str) -> Configuration | None:
    """The configuration chosen among `configs` (one optimizer's); ties go to the first, in grid order.
    A pruned trial is never chosen: None when every configuration was pruned."""
    candidates = [c for c in configs if not c.pruned]
    return min(candidates, key=lambda c: selection_key(c, select_mode), default=None)


def best(configs: list[Configuration], select_mode: str) -> dict[str, Configuration]:
    """Each optimizer's chosen configuration (the heatmap's red box, over every hyperparameter); an
    optimizer whose every trial was pruned has none."""
    per_optimizer: dict[str, list[Configuration]] = defaultdict(list)
    for config in configs:
        per_optimizer[config.optimizer].append(config)
    chosen = {optimizer: pick(own, select_mode) for optimizer, own in per_optimizer.items()}
    return {optimizer: config for optimizer, config in chosen.items() if config is not None}


def ranked_value(config: Configuration, mode: str) -> float | None:
    """The test seed mean that ranks optimizers; a diverged seed makes it the worst possible value."""
    if config.n_diverged:
        return -math.inf if mode == "max" else math.inf
    return config.mean


def t_interval(scores: list[float], level: float = INTERVAL_LEVEL) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds: mean ± t(level, n - 1) x std / sqrt(n), which assumes
    roughly normal seed-to-seed noise and is honest about few seeds (a percentile bootstrap of 3 seeds
    has 10 distinct resamples and is far too narrow). None below two scores."""
    from scipy.stats import t

    if len(scores) < 2:
        return None
    n = len(scores)
    mean = sum(scores) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
    half = float(t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def hashable(value: Any) -> Any:
    """A hashable, comparable form of a config value: NaN (a key missing from a run) becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value


def sort_key(value: Any) -> tuple:
    """Numbers in numeric order, then everything else by text, None last."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def label(value: Any) -> str:
    """Compact text of a value: 0.001, 1e-05, 3e+04, none."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
