# python -m pytest tests/test_packaging.py   (slow: builds and installs a wheel)
"""A non-editable install finds the bundled plugins inside the package and runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_install_lists_and_runs_bundled_plugins(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("framework-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def framework(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "framework", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import framework.config.registry as r; print(r.builtin_root())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(site / "framework" / "_builtin")
    listing = framework("tasks", "--check")
    assert listing.returncode == 0 and "digits" in listing.stdout and "broken" not in listing.stdout, listing.stdout
    models = framework("models", "--check")
    assert models.returncode == 0 and "template-small" in models.stdout and "broken" not in models.stdout, models.stdout
    run = framework("run", "tasks=template", "task.max_epochs=1", "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 done" in run.stdout
