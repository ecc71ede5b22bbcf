"""The `search:` section: a search space over configuration keys, a strategy and a budget (docs/search.md).

    search:
      strategy: quasirandom            # grid, random, quasirandom or tpe
      trials: 12                       # budget per task x optimizer (not for grid)
      seed: 0                          # the study seed: the same seed draws the same trials
      optimizer.learning_rate: loguniform(1e-4, 1e-1)
      optimizer.weight_decay: uniform(0.0, 0.1)
      task.hidden_layers: int(1, 3)
      task.hidden_size: choice(64, 128, 256)

On the command line the same keys follow `search.`: `search.strategy=tpe 'search.optimizer.learning_rate=
loguniform(1e-4,1e-1)'`. Here the section is parsed and checked (pure Python); grid.expand turns it into
runs, and random and quasi-random draws are computed here from the seed, so they are the same every time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from framework.config.overrides import parse_value, split_top_level
from framework.config.schema import did_you_mean, flatten

STRATEGIES = ("grid", "random", "quasirandom", "tpe")
PRUNERS = ("median", "asha")
# The settings of a search and their defaults; every other key of the section is a range over a config key.
SETTINGS: dict[str, Any] = {
    "strategy": "grid", "trials": None, "seed": 0, "storage": None, "pruner": None, "study": None,
}
KINDS = ("loguniform", "uniform", "int", "intlog", "choice")
_RANGE_RE = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.DOTALL)
SECTIONS_SEARCHED = ("task", "optimizer", "schedule", "engine")


@dataclass(frozen=True)
class Range:
    """One searched key: kind (loguniform, uniform, int, intlog, choice), bounds or choices."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def scale(self, u: float) -> Any:
        """The value at the point u in [0, 1) of the unit interval."""
        if self.kind == "choice":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.kind == "int":  # each integer of [low, high] gets the same share of the interval
            return int(min(self.low + math.floor(u * (self.high - self.low + 1)), self.high))
        if self.kind == "intlog":  # [low, high + 1) log-uniformly, rounded down: each integer by its log width
            value = math.exp(math.log(self.low) + u * (math.log(self.high + 1) - math.log(self.low)))
            return int(min(max(math.floor(value), self.low), self.high))
        if self.kind == "loguniform":
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def sample_point(self) -> Any:
        """A value inside the range, used to check the key against the configuration's schema."""
        return self.choices[0] if self.kind == "choice" else self.scale(0.0)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice({', '.join(str(c) for c in self.choices)})"
        return f"{self.kind}({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Search:
    """A checked `search:` section."""

    strategy: str
    trials: int | None
    seed: int
    storage: str | None
    pruner: str | None
    study: str
    ranges: tuple[Range, ...]

    def draws(self) -> list[dict[str, Any]]:
        """random / quasirandom: the values of every trial, in trial order; the first n are the same for any
        budget >= n, so raising `trials` extends a study. Quasi-random points are a scrambled Halton sequence
        (scipy.stats.qmc), as AlgoPerf's tuning uses, scaled into each range."""
        import numpy as np

        dimensions = len(self.ranges)
        if self.strategy == "quasirandom":
            from scipy.stats import qmc

            points = qmc.Halton(d=dimensions, scramble=True, seed=self.seed).random(self.trials)
        else:
            points = np.random.default_rng(self.seed).random((self.trials, dimensions))
        return [{r.key: r.scale(float(u)) for r, u in zip(self.ranges, row)} for row in points]

    def sample_point(self) -> dict[str, Any]:
        return {r.key: r.sample_point() for r in self.ranges}


def _number(text: str) -> float | None:
    value = parse_value(text)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_range(key: str, value: Any, source: str) -> tuple[Range | None, list[str]]:
    """`loguniform(1e-4, 1e-1)`, `uniform(0, 0.1)`, `int(1, 4)`, `intlog(16, 256)`, `choice(a, b, ...)`; a YAML
    list is a choice too."""
    where = f"search.{key} ({source})"
    if isinstance(value, list):
        return (Range(key, "choice", choices=tuple(value)), []) if value else (None, [f"{where}: an empty choice"])
    match = _RANGE_RE.match(str(value))
    if not match or match[1] not in KINDS:
        kinds = ", ".join(k + "(...)" for k in KINDS)
        return None, [f"{where}: expected one of {kinds}, e.g. loguniform(1e-4, 1e-1); got {value!r}"]
    kind, arguments = match[1], [a for a in split_top_level(match[2]) if a.strip()]
    if kind == "choice":
        if not arguments:
            return None, [f"{where}: choice needs at least one value, e.g. choice(64, 128)"]
        return Range(key, kind, choices=tuple(parse_value(a) for a in arguments)), []
    bounds = [_number(a) for a in arguments]
    if len(bounds) != 2 or None in bounds:
        return None, [f"{where}: {kind} takes two numbers, low and high, e.g. {kind}(1, 4); got {value!r}"]
    low, high = bounds
    if low >= high:
        return None, [f"{where}: low must be below high, got {kind}({low:g}, {high:g})"]
    if kind in ("loguniform", "intlog") and low <= 0:
        return None, [f"{where}: a log range needs low > 0, got {kind}({low:g}, {high:g}); use uniform for 0"]
    if kind in ("int", "intlog") and (low != int(low) or high != int(high)):
        return None, [f"{where}: {kind} takes whole numbers, got {kind}({low:g}, {high:g})"]
    return Range(key, kind, low, high), []


def _settings_problems(settings: dict[str, Any], source: str) -> list[str]:
    strategy, trials, seed = settings["strategy"], settings["trials"], settings["seed"]
    problems = []
    if strategy not in STRATEGIES:
        problems.append(f"search.strategy ({source}): must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
                        f"{did_you_mean(str(strategy), list(STRATEGIES))}")
    elif strategy != "grid" and not (isinstance(trials, int) and not isinstance(trials, bool) and trials > 0):
        problems.append(f"search.trials ({source}): strategy {strategy} needs a budget, a positive integer "
                        f"(trials per task x optimizer), got {trials!r}")
    if strategy == "grid" and trials is not None:
        problems.append(f"search.trials ({source}): strategy grid runs every combination of the choices; "
                        "leave trials out or pick random, quasirandom or tpe")
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        problems.append(f"search.seed ({source}): must be 0 or a positive integer, got {seed!r}")
    pruner = settings["pruner"]
    if pruner is not None and pruner not in PRUNERS:
        problems.append(f"search.pruner ({source}): must be {' or '.join(PRUNERS)} (or null: off), got {pruner!r}")
    elif pruner is not None and strategy != "tpe":
        problems.append(f"search.pruner ({source}): pruning reports to an Optuna study, so it needs search.strategy=tpe")
    if settings["storage"] is not None and strategy != "tpe":
        problems.append(f"search.storage ({source}): only strategy tpe keeps a study storage; leave it out")
    return problems


def parse_search(section: Mapping[str, Any], source: str) -> tuple[Search | None, list[str]]:
    """The checked Search of a `search` mapping (settings and dotted keys, nested mappings allowed), or the
    problems, one line each; None without problems when the section is empty."""
    if not section:
        return None, []
    flat = flatten(section)
    settings = dict(SETTINGS)
    ranges: list[Range] = []
    problems: list[str] = []
    for key, value in flat.items():
        if key in SETTINGS:
            settings[key] = value
        elif key.split(".")[0] not in SECTIONS_SEARCHED or "." not in key:
            hint = did_you_mean(key, list(SETTINGS))
            problems.append(f"search.{key} ({source}): neither a search setting ({', '.join(SETTINGS)}) nor a "
                            f"section.key to search (sections {', '.join(SECTIONS_SEARCHED)}){hint}")
        else:
            found, range_problems = parse_range(key, value, source)
            problems += range_problems
            ranges += [found] if found else []
    problems += _settings_problems(settings, source)
    if not ranges and not problems:
        problems.append(f"search ({source}): no key to search; add e.g. optimizer.learning_rate: loguniform(1e-4, 1e-1)")
    if settings["strategy"] == "grid":
        problems += [f"search.{r.key} ({source}): strategy grid needs choice(...) values, got {r.describe()}; "
                     "use random, quasirandom or tpe for ranges" for r in ranges if r.kind != "choice"]
    if problems:
        return None, problems
    study = settings["study"] or f"{settings['strategy']}-seed{settings['seed']}"
    return Search(settings["strategy"], settings["trials"], settings["seed"], settings["storage"], settings["pruner"],
                  str(study), tuple(ranges)), []
