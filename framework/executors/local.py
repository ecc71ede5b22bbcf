"""Local executor: the grid's runs one after the other in this process."""

from __future__ import annotations

from collections.abc import Callable

from framework.grid import RunSpec
from framework.registry import Registry
from framework.run import Outcome, execute


def run_all(
    runs: list[RunSpec], registry: Registry, force: bool = False, report: Callable[[int, Outcome], None] | None = None
) -> list[Outcome]:
    outcomes = []
    for index, spec in enumerate(runs):
        outcome = execute(spec, registry, force=force)
        outcomes.append(outcome)
        if report:
            report(index, outcome)
    return outcomes
