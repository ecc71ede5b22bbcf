# python -m pytest tests/test_layout.py
"""The engine's layout: imports follow the stages, modules and functions stay small (docs/design.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FRAMEWORK = Path(__file__).resolve().parent.parent / "framework"

# What each part of the package may import from framework (besides itself). Stages call forward
# (an executor calls training.run, a run writes results.run_folder) and never backward: results
# knows nothing of training or executors, config nothing of anything.
ALLOWED = {
    "errors": set(),
    "plugins": set(),
    "config": {"errors", "plugins"},  # the registry makes the packages plugins are imported as
    "results": {"errors", "config"},
    "training": {"errors", "config", "results"},
    "executors": {"errors", "config", "results", "training"},
    "vision": {"errors", "config", "training"},  # building blocks for task plugins
    "api": {"errors", "config", "training"},  # the plugin contract, re-exported
    "testing": {"errors", "config", "training"},  # the conformance checks, for a plugin author's pytest
    "commands": {"errors", "config", "results", "training", "executors"},
    "cli": {"errors", "commands"},
    "__main__": {"cli"},
    "__init__": set(),
}
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 62


def _modules() -> list[Path]:
    return sorted(FRAMEWORK.rglob("*.py"))


def _part(path: Path) -> str:
    relative = path.relative_to(FRAMEWORK)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_parts(path: Path) -> set[str]:
    """The parts of framework a module imports, at module level or inside functions."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            dotted = name.split(".")
            if dotted[0] == "framework" and len(dotted) > 1 and dotted[1] != "__version__":
                parts.add(dotted[1])
    return parts


def test_every_part_of_the_package_has_a_rule():
    assert {_part(path) for path in _modules()} <= set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(FRAMEWORK)))
def test_imports_follow_the_stages(path):
    part = _part(path)
    wrong = _imported_parts(path) - ALLOWED[part] - {part}
    assert not wrong, f"{path.relative_to(FRAMEWORK)} ({part}) imports framework.{', framework.'.join(sorted(wrong))}"


def test_modules_and_functions_stay_small():
    problems = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(FRAMEWORK)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            problems.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    assert not problems, "split these: " + "; ".join(problems)
