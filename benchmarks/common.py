# (imported by the benchmark scripts of this folder; not run by itself)
"""What the benchmarks share: the machine's description, alternating rounds and their medians, the
step-time loop of the hand-written references, and writing a marked section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent


def machine(*packages: str) -> str:
    """CPU, Python and torch versions, plus those of `packages` (e.g. "lightning")."""
    import importlib

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = "".join(f", {name} {importlib.import_module(name).__version__}" for name in packages)
    return f"{cpu} ({os.cpu_count()} CPUs), Python {platform.python_version()}, torch {torch.__version__}{versions}"


def median_rounds(sides: dict[str, Callable[[], float]], rounds: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Each side's result per round, the sides in alternating order (a slow spell of a shared machine
    then hits every side alike), and the medians."""
    rows = []
    names = list(sides)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        row = {name: sides[name]() for name in order}
        rows.append({name: row[name] for name in names})
        print("  ".join(f"{name} {value:.3f}" for name, value in rows[-1].items()), flush=True)
    return {name: statistics.median(r[name] for r in rows) for name in names}, rows


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def ms_per_step(loader: Iterable, epochs: int, device: str, train_step: Callable[[Any], Any]) -> float:
    """A hand-written reference's time per step: `train_step(batch)` (returns the loss) over `epochs`
    passes of `loader`, its sampler reshuffled per epoch as the engine does, timed as the engine's
    TrainTimer times a run (epoch wall time, a GPU synchronised at each end) and divided by the steps."""
    import torch

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    seconds_, steps, loss = 0.0, 0, None
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        sync()
        start = time.perf_counter()
        for batch in loader:
            loss = train_step(batch)
            steps += 1
        sync()
        seconds_ += time.perf_counter() - start
    if loss is None or not torch.isfinite(loss):
        raise RuntimeError(f"the reference loop diverged or did not train: loss {loss}")
    return 1000 * seconds_ / steps


def write_section(path: Path, name: str, snippet: str) -> None:
    """Replace the section between `<!-- name: begin -->` and `<!-- name: end -->` (or append it)."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    body = f"{begin}\n{snippet.strip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + body + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + body + "\n"
    path.write_text(text)


def publish(snippet: str, output: str, name: str) -> None:
    """Print a benchmark's markdown and, unless `output` is "-", put it into that file's `name` section."""
    print(snippet)
    if output != "-":
        write_section(Path(output), name, snippet)
        print(f"wrote {output}")
