# python -m pytest tests   (shared fixtures)
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """`framework ARGS` in a fresh process, as a user types it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "framework", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"framework {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


def require_service(name: str, available: bool, hint: str) -> None:
    """Skip the calling test when `name` (a service it talks to) is not available here, saying how to get
    it; in CI ($CI is true, as .ci/run exports) fail it instead, or CI would pass without running it."""
    if available:
        return
    message = f"{name} is not available: {hint}"
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{message} (CI is set: a missing service fails the tests that need it)", pytrace=False)
    pytest.skip(message)


def flaky_plugin(root: Path) -> Path:
    """A user plugin folder outside the repo holding `flaky`: the template task taught to misbehave.

    task.mode: ok, raise (an exception at step 3), nan (a NaN loss at step 3), segfault (the process dies
    at step 3); task.step_sleep: seconds slept per training step (to catch a run mid-training). Each fit
    appends the global step it starts from to <run dir>/fit_starts.txt (0, or where it resumed).
    """
    task = root / "tasks" / "flaky"
    if task.exists():
        return root
    shutil.copytree(REPO / "tasks" / "template", task, ignore=shutil.ignore_patterns("__pycache__"))
    defaults = (task / "default.yaml").read_text()
    defaults = defaults.replace("name: template", "name: flaky").replace("max_epochs: 5", "max_epochs: 2")
    (task / "default.yaml").write_text(
        defaults.replace("  hidden_size: 32", "  hidden_size: 32\n  mode: ok\n  step_sleep: 0.0"))
    model = (task / "model.py").read_text()
    model = model.replace(
        "        loss = F.cross_entropy(self.model(x), y)\n",
        "        loss = F.cross_entropy(self.model(x), y)\n"
        "        if self.config.task.step_sleep:\n"
        "            import time; time.sleep(self.config.task.step_sleep)\n"
        "        if self.config.task.mode == 'raise' and self.global_step == 3:\n"
        "            raise RuntimeError('boom from the flaky task')\n"
        "        if self.config.task.mode == 'segfault' and self.global_step == 3:\n"
        "            import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n"
        "        if self.config.task.mode == 'nan' and self.global_step == 3:\n"
        "            loss = loss * float('nan')\n",
    )
    model += (
        "\n    def on_train_start(self):\n"
        "        if self.global_rank == 0:\n"
        "            import pathlib\n"
        "            with open(pathlib.Path(self.config.run.dir) / 'fit_starts.txt', 'a') as fh:\n"
        "                fh.write(f'{self.global_step}\\n')\n"
    )
    (task / "model.py").write_text(model)
    with (task / "data.py").open("a") as data:  # prepare_data leaves a trace when $FLAKY_PREPARE_LOG is set
        data.write(
            "\n\ndef _logged_prepare(self):\n"
            "    import os\n"
            "    if os.environ.get('FLAKY_PREPARE_LOG'):\n"
            "        with open(os.environ['FLAKY_PREPARE_LOG'], 'a') as fh:\n"
            "            fh.write(f'{self.config.task.noise}\\n')\n"
            "\n\nBlobsDataModule.prepare_data = _logged_prepare\n"
        )
    return root
