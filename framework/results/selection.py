"""Which configuration is best: each task's score, configurations (runs that differ only in their
seed), their statistics over seeds and a bootstrap interval.

    load_runs records -> Scoring per task -> Configuration per task x optimizer x hyperparameter values

Shared by the best-configuration table, the learning curves, time to target and performance profiles,
so that they all call the same configuration "best". Knows nothing about any task: what counts as the
score comes from each run's resolved `evaluation` section. numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from framework.config.grid import NON_IDENTITY
from framework.errors import FrameworkError

SEED = "engine.seed"
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same runs always give the same interval
# Record keys that are not hyperparameters: identity, bookkeeping and the plugin names.
_BOOKKEEPING = {"task", "optimizer", "run_id", "state", "error", "run_dir", "task.name", "optimizer.name", SEED}


@dataclass(frozen=True)
class Scoring:
    """How one task's runs are scored, read from their `evaluation` and `task` sections."""

    task: str
    column: str  # the score column of a run record, e.g. best/test_acc
    mode: str  # max or min: which direction is better
    spec: str  # format spec of the numbers, e.g. .3f
    target: float | None  # evaluation.target: a value of target_metric that counts as reached
    target_metric: str | None  # task.target_metric, logged at each validation (val_acc)
    target_mode: str  # task.target_metric_mode

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
    scores: list[float] = field(default_factory=list)  # the finite scores of the runs that are done
    seeds: list[Any] = field(default_factory=list)  # the seeds of those scores, in the same order

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
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None

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
    return Scoring(
        task=task,
        column=f"{first.get('evaluation.checkpoint') or 'best'}/{metric}",
        mode=mode,
        spec=spec,
        target=None if target is None or _missing(target) else float(target),
        target_metric=first.get("task.target_metric"),
        target_mode=target_mode if target_mode in ("max", "min") else "max",
    )


def by_task(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[run["task"]].append(run)
    return dict(sorted(grouped.items()))


def hyperparameters(runs: list[dict[str, Any]]) -> list[str]:
    """Config keys of the runs that change what a run computes, the seed left out."""
    keys = set().union(*runs) - _BOOKKEEPING
    return sorted(k for k in keys if "/" not in k and not any(k == p or k.startswith(p + ".") for p in NON_IDENTITY))


def configurations(runs: list[dict[str, Any]], score: Scoring | None = None) -> list[Configuration]:
    """One Configuration per optimizer x hyperparameter values among one task's runs, sorted; without a
    `score` they hold the runs only (enough to find the grid's axes)."""
    keys = hyperparameters(runs)
    groups: dict[tuple, Configuration] = {}
    # In seed order, whatever the order of the run directories (hashes): the bootstrap draws by position.
    for run in sorted(runs, key=lambda r: sort_key(hashable(r.get(SEED)))):
        key = (run["optimizer"], *(hashable(run.get(k)) for k in keys))
        config = groups.get(key)
        if config is None:
            values = {k: run.get(k) for k in keys if not _missing(run.get(k))}
            config = groups[key] = Configuration(run["task"], run["optimizer"], values)
        config.runs.append(run)
        if score is None:
            continue
        value = run.get(score.column)
        if run.get("state") == "done" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            config.scores.append(float(value))
            config.seeds.append(run.get(SEED))
    return sorted(groups.values(), key=lambda c: (c.optimizer, [sort_key(hashable(c.values.get(k))) for k in keys]))


def varying_keys(configs: list[Configuration]) -> list[str]:
    """Hyperparameters with more than one value among the configurations of one optimizer."""
    per_optimizer: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    keys = set().union(*(c.values for c in configs))
    for config in configs:
        for key in keys:
            per_optimizer[config.optimizer][key].add(hashable(config.values.get(key)))
    return sorted({k for keys in per_optimizer.values() for k, values in keys.items() if len(values) > 1})


def best(configs: list[Configuration], mode: str) -> dict[str, Configuration]:
    """Each optimizer's configuration with the best seed mean (the heatmap's red box, over every
    hyperparameter); an optimizer none of whose runs finished maps to its first configuration."""
    chosen: dict[str, Configuration] = {}
    for config in configs:
        old = chosen.get(config.optimizer)
        if old is None or (config.mean is not None and (old.mean is None or _better(config.mean, old.mean, mode))):
            chosen[config.optimizer] = config
    return chosen


def bootstrap_interval(scores: list[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean over seeds: `resamples` draws of n scores with
    replacement (numpy's default_rng(seed)), the (1 - level)/2 and (1 + level)/2 quantiles of their means.
    None below two scores. With few seeds it is narrow: 3 seeds have only 10 distinct resamples."""
    import numpy as np

    if len(scores) < 2:
        return None
    values = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


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
