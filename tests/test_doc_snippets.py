# python -m pytest -q tests/test_doc_snippets.py   (slow: the guides' commands train small grids; ~3 min on 2 CPUs)
"""Every fenced code block of the guides and the README is run, so docs, templates and code cannot drift.

A guide is followed as a reader would, in a fresh folder (tmp_path) holding copies of the templates
(`tasks/template`, `optimizers/template`, `models/template`), with FRAMEWORK_PLUGIN_PATH=<folder>/my_plugins and its own
data cache. Blocks are taken in page order; what each one is decides what is done with it:

- first line `# file: PATH`: the block is that file's content (python, yaml): written to PATH;
- first line `# excerpt of: PATH` (or the README's `(PATH, abridged)`): the block must be part of that
  repository file: each line of a python block appears in it, a yaml block is a sub-mapping of it;
- other python blocks are executed in a fresh interpreter in the folder;
- other yaml blocks must parse (framework/config/file_io.py); one whose first line is
  `# framework run -e FILE` is also written to FILE and expanded by `framework run -e FILE --dry-run`;
- bash blocks run line by line in bash, `framework` being this checkout's; a `framework run` on digits
  gets `task.max_epochs=2` appended (the guide's grid, with a shorter recipe), and the commands in SKIPPED
  are not run, for the reason given;
- markdown blocks show the start of a README a reader writes; they are not code.
A block of any other language fails the test: a new kind of snippet needs a rule here.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHORTER = {"tasks=digits": "task.max_epochs=2"}  # the guide's grid with a shorter recipe: same code paths
# Commands a test cannot run here (prefix -> why); none today: add one with its reason.
SKIPPED: dict[str, str] = {}


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block, in page order."""
    return [(lang, text) for lang, text in BLOCK.findall(page.read_text(encoding="utf-8"))]


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].strip()


def _sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    for kind in ("tasks", "optimizers", "models"):
        shutil.copytree(REPO / kind / "template", tmp_path / kind / "template")
    shim = tmp_path / "bin" / "framework"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m framework "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "FRAMEWORK_PLUGIN_PATH": str(tmp_path / "my_plugins"), "FRAMEWORK_DATA_DIR": str(tmp_path / "data"),
           "PYTHONUNBUFFERED": "1"}
    (tmp_path / "my_plugins").mkdir()
    return tmp_path, env


def _shell(text: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run a bash block's commands; return their combined output, one entry per command."""
    outputs = []
    for line in text.strip().splitlines():
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        if any(command.startswith(skipped) for skipped in SKIPPED):
            continue
        if command.startswith("export "):
            key, value = command.removeprefix("export ").split("=", 1)
            env[key] = value.replace("$PWD", str(cwd))
            continue
        if command.startswith("framework run") and "--dry-run" not in command:
            command += "".join(f" {extra}" for marker, extra in SHORTER.items() if marker in command)
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        outputs.append(proc.stdout)
    return outputs


def _is_subtree(part, whole) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _is_subtree(v, whole[k]) for k, v in part.items())
    return part == whole


def _excerpt_source(first: str) -> Path | None:
    match = re.match(r"#\s*excerpt of:\s*(\S+)", first) or re.search(r"\((\S+), abridged\)", first)
    return REPO / match[1] if match else None


def follow(page: Path, cwd: Path, env: dict[str, str]) -> list[str]:
    """Do what each block of `page` says (module docstring); return the shell commands' outputs."""
    from framework.config.file_io import load_yaml, parse_yaml

    outputs = []
    for lang, text in blocks(page):
        first = _first_line(text)
        target = re.match(r"#\s*file:\s*(\S+)", first)
        source = _excerpt_source(first)
        if target and lang in ("python", "yaml"):
            (cwd / target[1]).parent.mkdir(parents=True, exist_ok=True)
            (cwd / target[1]).write_text(text, encoding="utf-8")
        elif source and lang == "python":
            lines = source.read_text(encoding="utf-8").splitlines()
            wanted = [line.strip() for line in text.splitlines()[1:] if line.strip()]
            assert all(any(w in line for line in lines) for w in wanted), f"{page.name}: not in {source}:\n{text}"
        elif source and lang == "yaml":
            assert _is_subtree(parse_yaml(text, page.name), load_yaml(source)), f"{page.name}: not in {source}:\n{text}"
        elif lang == "python":
            proc = subprocess.run([sys.executable, "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"{page.name} python block failed:\n{text}\n{proc.stderr[-3000:]}"
        elif lang == "yaml":
            parse_yaml(text, page.name)
            experiment = re.match(r"#\s*framework run -e (\S+)\s*$", first)
            if experiment:
                (cwd / experiment[1]).write_text(text, encoding="utf-8")
                outputs += _shell(f"framework run -e {experiment[1]} --dry-run", cwd, env)
        elif lang in ("bash", "sh"):
            outputs += _shell(text, cwd, env)
        else:
            assert lang == "markdown", f"{page.name}: a ```{lang} block has no rule in tests/test_doc_snippets.py"
    return outputs


def test_adding_a_task_from_the_template_to_the_first_heatmap(tmp_path):
    cwd, env = _sandbox(tmp_path)
    outputs = follow(REPO / "docs" / "adding_a_task.md", cwd, env)
    assert any(re.search(r"^\s*rings\b", out, re.M) for out in outputs)  # `framework tasks` lists it
    plots = cwd / "results" / "plots"
    assert (plots / "rings_heatmap.png").is_file() and (plots / "rings_heatmap.csv").is_file()
    import pandas as pd

    table = pd.read_csv(plots / "rings_heatmap.csv")
    assert len(table) == 4 and table["n_done"].eq(2).all() and table["box"].sum() == 2
    assert (plots / "rings_adamw_baseline_predicted_rings.png").is_file()
    page = (cwd / "results" / "report.html").read_text(encoding="utf-8")
    assert "test points coloured by the predicted ring" in page
    assert (cwd / "estimate.md").is_file()


def test_adding_an_optimizer_up_to_its_heatmap(tmp_path):
    cwd, env = _sandbox(tmp_path)
    outputs = follow(REPO / "docs" / "adding_an_optimizer.md", cwd, env)
    assert any(re.search(r"^\s*adamax\s.*ok", out, re.M) for out in outputs)  # `framework optimizers --check`
    import pandas as pd

    table = pd.read_csv(cwd / "results" / "plots" / "digits_heatmap.csv")
    assert sorted(table.optimizer.unique()) == ["adamax", "adamw_baseline"] and len(table) == 24
    assert table["mean"].notna().all()


def test_adding_a_model_up_to_a_trained_cell(tmp_path):
    cwd, env = _sandbox(tmp_path)
    outputs = follow(REPO / "docs" / "adding_a_model.md", cwd, env)
    assert any(re.search(r"^\s*resconv\s+ok\s.*classification\s+resconv-small, resconv-deep", out, re.M) for out in outputs)
    assert any("classification: resconv-small preset (" in out and "random init" in out for out in outputs)
    from framework.results.run_folder import load_runs

    [run] = load_runs(cwd / "results")
    assert run["state"] == "done" and run["task.model.name"] == "resconv-small" and run["best/test_acc"] > 1 / 6


def test_readme_snippets(tmp_path):
    cwd, env = _sandbox(tmp_path)
    # the README's pytest example collects the checks of a plugin folder: one optimizer, the template's copy
    mine = cwd / "my_plugins" / "optimizers" / "my_optimizer"
    shutil.copytree(REPO / "optimizers" / "template", mine)
    settings = mine / "default.yaml"
    settings.write_text(settings.read_text().replace("name: template", "name: my_optimizer", 1))
    follow(REPO / "README.md", cwd, env)
    assert (cwd / "experiment.yaml").is_file()  # the experiment file was expanded by a dry run
