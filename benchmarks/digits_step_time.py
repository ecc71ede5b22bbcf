# python benchmarks/digits_step_time.py --epochs 30 --repeats 5 --output docs/benchmarks.md
"""Training-step time of the digits task: `framework run` against a hand-written PyTorch loop.

Both sides train the same thing: the digits MLP (built by the task), the data module's training loader
(batch size 64, shuffled by (seed, epoch)), AdamW with the optimizer plugin's parameter groups and its
LambdaLR schedule stepped after every step, cross-entropy. The reference loop is plain PyTorch:
forward, loss, zero_grad, backward, step, scheduler step; no callbacks, no logging, no validation.

Time per step is measured the same way on both sides: wall time of each training epoch (creating the
batch iterator included, validation excluded) summed over all epochs and divided by the number of
optimizer steps. The framework's number is the one the run records itself (`train.step_time_ms` in
scores.json, from TrainTimer). Each repeat runs both sides in fresh processes with the same number of
torch threads, one after the other, so machine load drifts affect both alike; the medians are compared.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = ["tasks=digits", "optimizers=adamw_baseline"]
BEGIN, END = "<!-- digits_step_time: begin -->", "<!-- digits_step_time: end -->"


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def framework_step_ms(epochs: int, device: str, threads: int) -> float:
    """`framework run` through the real CLI in a fresh process; the run's own recorded step time."""
    with tempfile.TemporaryDirectory() as output:
        command = [sys.executable, "-m", "framework", "run", *OVERRIDES, f"task.max_epochs={epochs}",
                   f"engine.accelerator={device}", "-o", output, "--force"]
        subprocess.run(command, cwd=ROOT, env=_env(threads), check=True, capture_output=True, text=True)
        (scores,) = Path(output).glob("*/*/*/scores.json")
        train = json.loads(scores.read_text())["train"]
        if train["steps"] != train["global_step"]:
            raise RuntimeError(f"the run timed {train['steps']} of its {train['global_step']} steps")
        return float(train["step_time_ms"])


def reference_step_ms(epochs: int, device: str, threads: int) -> float:
    """Run `--reference` in a fresh process, so it starts as cold as the framework's run."""
    command = [sys.executable, __file__, "--reference", "--epochs", str(epochs), "--device", device,
               "--threads", str(threads)]
    result = subprocess.run(command, cwd=ROOT, env=_env(threads), check=True, capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def reference(epochs: int, device: str, threads: int) -> float:
    """The hand-written loop; returns milliseconds per training step."""
    import torch
    from torch.nn import functional as F

    from framework.config import Node, parse_overrides
    from framework.grid import expand
    from framework.groups import GroupedModel
    from framework.registry import Registry
    from framework.run import OptimizerFactory

    torch.set_num_threads(threads)
    registry = Registry()
    (spec,) = expand(parse_overrides([*OVERRIDES, f"task.max_epochs={epochs}"]), registry)
    config = Node(spec.config)
    task_module = registry.get("task", "digits").load()
    optimizer_module = registry.get("optimizer", "adamw_baseline").load()
    mlp = importlib.import_module(f"{task_module.__package__}.model").mlp

    torch.manual_seed(config.engine.seed)
    datamodule = task_module.get_datamodule(config)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    task = config.task
    model = GroupedModel(mlp(task.hidden_size, task.hidden_layers, task.dropout)).to(device)
    configured = OptimizerFactory(optimizer_module.configure_optimizers, config)(model, epochs * len(loader))
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    model.train()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    seconds, steps = 0.0, 0
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        sync()
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            steps += 1
        sync()
        seconds += time.perf_counter() - start
    if not torch.isfinite(loss):
        raise RuntimeError(f"the reference loop diverged: loss {loss.item()}")
    return 1000 * seconds / steps


def _markdown(args, rows: list[tuple[float, float]], machine: dict[str, str]) -> str:
    framework = statistics.median(r[0] for r in rows)
    ref = statistics.median(r[1] for r in rows)
    lines = [
        BEGIN,
        f"Measured {date.today().isoformat()} with `python benchmarks/digits_step_time.py --epochs {args.epochs} "
        f"--repeats {args.repeats} --threads {args.threads} --device {args.device}`.",
        "",
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, torch {machine['torch']}, lightning {machine['lightning']}, "
        f"Python {machine['python']}; {args.threads} torch thread(s) on both sides; device {args.device}.",
        "",
        "| repeat | framework ms/step | reference ms/step | ratio |",
        "|---|---|---|---|",
        *(f"| {i} | {f:.3f} | {r:.3f} | {f / r:.2f} |" for i, (f, r) in enumerate(rows, 1)),
        f"| **median** | **{framework:.3f}** | **{ref:.3f}** | **{framework / ref:.2f}** |",
        "",
        f"Ratio framework / reference (medians): **{framework / ref:.2f}x** (target <= 1.5x).",
        END,
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, snippet: str) -> None:
    """Replace the marked section of `path` (or append it), leaving the rest of the file as it is."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + snippet.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + snippet
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _machine(threads: int) -> dict[str, str]:
    import lightning
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": str(os.cpu_count()), "torch": torch.__version__, "lightning": lightning.__version__,
            "python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per run (task default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="framework/reference pairs; medians are compared")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on both sides (1: a small MLP gains nothing from more, and shared cores make them noisy)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="markdown file whose marked digits section is replaced ('-' prints only)")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.reference:
        print(reference(args.epochs, args.device, args.threads))
        return 0

    accelerator = "gpu" if args.device == "cuda" else "cpu"
    rows = []
    print(f"{'repeat':>6}  {'framework ms/step':>17}  {'reference ms/step':>17}  {'ratio':>5}", flush=True)
    for i in range(1, args.repeats + 1):
        framework = framework_step_ms(args.epochs, accelerator, args.threads)
        ref = reference_step_ms(args.epochs, args.device, args.threads)
        rows.append((framework, ref))
        print(f"{i:>6}  {framework:>17.3f}  {ref:>17.3f}  {framework / ref:>5.2f}", flush=True)
    snippet = _markdown(args, rows, _machine(args.threads))
    ratio = statistics.median(r[0] for r in rows) / statistics.median(r[1] for r in rows)
    print(f"median ratio framework / reference: {ratio:.2f}x")
    if args.output != "-":
        _write(Path(args.output), snippet)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
