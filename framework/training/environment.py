"""What a run ran on: library versions, device and code version, captured when the run starts.

    {"code": {"framework": "0.1.0", "git_commit": "0918213...", "git_dirty": false},
     "packages": {"torch": "2.13.0+cpu", "lightning": "2.6.6", ...},
     "device": "cpu: AMD EPYC 7B13 (2 cores)", "python": "3.11.7", "platform": "Linux-...", "host": "vm"}

Recorded in each run directory as env.json (`write_environment`) so that a results table can
say which library versions and which commit produced each number, even long after the machine changed.
Everything but the device is the same for every run of one process and is captured once.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from framework.config.file_io import atomic_write_json
from framework.results.run_folder import ENV_FILE

# Distributions whose versions change numbers or speed; a missing one is recorded as null.
PACKAGES = ("torch", "lightning", "numpy", "scikit-learn", "torchvision", "transformers", "pyyaml")


def capture(engine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The environment of a run whose `engine` section is given (its accelerator and devices pick the
    device); JSON-serialisable."""
    engine = engine or {}
    return {
        "code": dict(_code()),
        "packages": dict(_packages()),
        "device": _device(str(engine.get("accelerator", "auto")), engine.get("devices", 1)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "captured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_environment(run_dir: Path, engine: Mapping[str, Any]) -> None:
    """env.json of a run directory: what this run runs on (read back by `run_folder.read_environment`)."""
    atomic_write_json(run_dir / ENV_FILE, capture(engine))


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[tuple[str, str | None], ...]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return tuple(versions)


@functools.lru_cache(maxsize=1)
def _code() -> tuple[tuple[str, Any], ...]:
    """The framework's version and, in a git checkout, its commit and whether files were modified.

    Cached for the process on purpose: a grid runs the code it imported at start, even if the checkout
    changes while it runs."""
    from framework import __version__

    source = Path(__file__).resolve().parent.parent  # the framework package
    # Only a checkout that tracks the package names the code: an installed copy inside some other
    # repository (a venv in the user's project) would otherwise report that project's commit.
    tracked = _git(source, "ls-files", "--error-unmatch", "__init__.py") is not None
    commit = _git(source, "rev-parse", "HEAD") if tracked else None
    dirty = None
    if commit is not None:
        changes = _git(source, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(changes) if changes is not None else None
    return (("framework", __version__), ("git_commit", commit), ("git_dirty", dirty))


def _git(cwd: Path, *args: str) -> str | None:
    """Output of a git command, or None outside a checkout or without git (a wheel install)."""
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _device(accelerator: str, devices: Any) -> str:
    """`kind: name`, following Lightning's choice for `auto` (MPS, then CUDA, then the CPU)."""
    count = devices if isinstance(devices, int) and devices > 1 else 1
    if accelerator in ("auto", "gpu", "cuda", "mps"):
        import torch  # the run imports it next anyway

        mps = getattr(torch.backends, "mps", None)
        if accelerator in ("auto", "gpu", "mps") and mps is not None and mps.is_available():
            return "mps: Apple GPU"
        if accelerator != "mps" and torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(min(count, torch.cuda.device_count()))]
            shown = names[0] if len(set(names)) == 1 else ", ".join(names)
            return f"cuda: {len(names)} x {shown}" if len(names) > 1 else f"cuda: {shown}"
    if accelerator not in ("auto", "cpu", "gpu", "cuda", "mps"):
        return accelerator  # tpu, hpu, ...: named as configured
    return f"cpu: {_cpu_name()} ({os.cpu_count()} cores)"


@functools.lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


if __name__ == "__main__":  # python -m framework.training.environment: what a run started here would record
    import json

    json.dump(capture(), sys.stdout, indent=2)
    print()
