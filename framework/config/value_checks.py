"""Value checks for optimizer plugins: a bad hyperparameter fails with one line that names its key.

torch.optim's own messages ("Invalid beta parameter at index 0: 1.5") do not say which configuration key
to change, and some libraries check nothing at all (a negative Lion weight decay trains happily). A
plugin calls these first thing in `configure_optimizers`; every problem is collected, then one
ValueError lists them all, e.g. `optimizer.beta1: must be in [0, 1), got 1.5`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def _interval(text: str) -> tuple[float, float, bool, bool]:
    """'[0, 1)' -> (0.0, 1.0, low closed, high open); 'inf' is allowed as a bound."""
    text = text.strip()
    if text[:1] not in "[(" or text[-1:] not in "])" or text.count(",") != 1:
        raise ValueError(f"bad interval {text!r}: write it like '[0, 1)' or '(0, inf)'")
    low, high = (float(part) for part in text[1:-1].split(","))
    return low, high, text[0] == "[", text[-1] == "]"


def range_problems(section: Mapping[str, Any], ranges: Mapping[str, str], prefix: str = "optimizer.") -> list[str]:
    """One message per key of `section` whose value lies outside its interval. A key that may be null
    (library default) is left out of `ranges` by the caller while it is null."""
    problems = []
    for key, interval in ranges.items():
        value = section[key]
        low, high, low_closed, high_closed = _interval(interval)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        inside = number and not math.isnan(value) and (
            (value >= low if low_closed else value > low) and (value <= high if high_closed else value < high)
        )
        if not inside:
            problems.append(f"{prefix}{key}: must be in {interval}, got {value!r}")
    return problems


def choice_problems(section: Mapping[str, Any], choices: Mapping[str, Iterable[Any]], prefix: str = "optimizer.") -> list[str]:
    """One message per key of `section` whose value is not one of its choices."""
    problems = []
    for key, allowed in choices.items():
        allowed = tuple(allowed)
        if section[key] not in allowed:
            problems.append(f"{prefix}{key}: must be one of {', '.join(map(str, allowed))}, got {section[key]!r}")
    return problems


def check_values(section: Mapping[str, Any], ranges: Mapping[str, str] | None = None,
                 choices: Mapping[str, Iterable[Any]] | None = None) -> None:
    """Raise one ValueError listing every out-of-range or unknown value of the optimizer section.

    `ranges` maps keys to intervals ('[0, 1)', '(0, inf)'); `choices` maps keys to allowed values.
    """
    problems = range_problems(section, ranges or {}) + choice_problems(section, choices or {})
    if problems:
        raise ValueError("; ".join(problems))


__all__ = ["check_values", "choice_problems", "range_problems"]
