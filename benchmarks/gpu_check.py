# python benchmarks/gpu_check.py [--steps 100] [--output docs/estimation.md]     (benchmarks/gpu_check.sh)
# python benchmarks/gpu_check.py --tiny --steps 3 --output -                       (CPU, tiny presets: the test)
"""One GPU, four real-size models: is the machine (GPU and CPU cores) fit for the benchmark?

For each case, through the tasks' own code (config -> task plugin -> model, adapter and training loader):

- step time: `--steps` training steps (forward with the loss, backward, AdamW) after 5 warm-up steps, on a
  few batches already on the device, so that the GPU alone is timed; CUDA-synchronised before and after;
- samples/s the GPU consumes (batch / step time) and its peak memory (torch.cuda.max_memory_allocated);
- the input pipeline's samples/s on one CPU core (the task's training loader with no worker processes
  and one torch thread: decoding, jitter, crop, collate) and the cores it takes to feed the GPU.

Cases (bf16 autocast on the GPU; random init; the bundled scenes upscaled to the crop size):
    coco_panoptic          mask2former-swin-tiny  1024 px crops, batch 8
    coco_detection         detr-r50               800 px crops, batch 8
    semantic_segmentation  segformer-b0           512 px crops, batch 16
    classification         vit-b16                224 px, batch 64

`--tiny` runs the same code on the tiny presets at the bundled sizes, batch 2, on whatever device there
is (the test suite's CPU check). The results go into `--output`'s `gpu-check` section.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, publish  # noqa: E402

SECTION = "gpu-check"
WARMUP = 5


@dataclass
class Case:
    task: str
    model: str
    batch: int
    overrides: tuple[str, ...]


CASES = [
    Case("coco_panoptic", "mask2former-swin-tiny", 8, ("task.crop_size=1024",)),
    Case("coco_detection", "detr-r50", 8, ("task.crop_size=800",)),
    Case("semantic_segmentation", "segformer-b0", 16, ("task.crop_size=512",)),
    Case("classification", "vit-b16", 64, ("task.image_size=224",)),
]
TINY = [
    Case("coco_panoptic", "tiny", 2, ("task.crop_size=128",)),
    Case("coco_detection", "tiny", 2, ("task.crop_size=128",)),
    Case("semantic_segmentation", "tiny", 2, ("task.crop_size=128",)),
    Case("classification", "tiny", 2, ("task.image_size=64",)),
]


def task_parts(case: Case, precision: str) -> tuple[Any, Any, Any]:
    """(config, task model, data module) as `framework run` builds them for the case."""
    from framework.config import Node, parse_overrides
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.training.run import OptimizerFactory

    registry = Registry()
    overrides = [f"tasks={case.task}", "optimizers=adamw_baseline", f"task.model.name={case.model}",
                 f"task.batch_size={case.batch}", f"engine.precision={precision}", "engine.data_workers=0",
                 *case.overrides]
    (spec,) = expand(parse_overrides(overrides), registry)
    config = Node(spec.config)
    task_module = registry.get("task", case.task).load()
    optimizer_module = registry.get("optimizer", "adamw_baseline").load()
    model, datamodule = task_module.get_task(OptimizerFactory(optimizer_module.configure_optimizers, config), config)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return config, model, datamodule


def pipeline_samples_per_s(datamodule: Any, batches: int) -> tuple[float, list]:
    """The training loader's samples/s on one core (no workers, one torch thread); the batches read."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loader = iter(datamodule.train_dataloader())
        next(loader)  # the first batch opens files and caches: not the steady state
        start, read = time.perf_counter(), [next(loader) for _ in range(batches)]
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return sum(len(b) for b in read) / elapsed, read


def step_times(model: Any, batches: list, steps: int, device: str, bf16: bool) -> tuple[list[float], int | None]:
    """Seconds of each timed training step (synchronised), and the peak GPU memory in bytes."""
    import torch
    from lightning.fabric.utilities.apply_func import move_data_to_device

    network, adapter = model.network.to(device).train(), model.adapter
    on_device = [move_data_to_device(b, device) for b in batches]
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def step(batch) -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = adapter.loss(network(**adapter.inputs(batch)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for index in range(WARMUP + steps):
        sync()
        start = time.perf_counter()
        step(on_device[index % len(on_device)])
        sync()
        if index >= WARMUP:
            times.append(time.perf_counter() - start)
    return times, (torch.cuda.max_memory_allocated() if device == "cuda" else None)


def check(case: Case, steps: int, device: str, pipeline_batches: int) -> dict[str, Any]:
    bf16 = device == "cuda"
    config, model, datamodule = task_parts(case, "bf16-mixed" if bf16 else "32-true")
    per_core, batches = pipeline_samples_per_s(datamodule, pipeline_batches)
    times, peak = step_times(model, batches, steps, device, bf16)
    step_s = statistics.median(times)
    params = sum(p.numel() for p in model.network.parameters()) / 1e6
    gpu_rate = case.batch / step_s
    row = {"task": case.task, "model": case.model, "params_m": params, "size": config.task.get("crop_size") or
           config.task.get("image_size"), "batch": case.batch, "step_ms": 1000 * step_s,
           "samples_per_s": gpu_rate, "peak_gib": None if peak is None else peak / 2**30,
           "pipeline_per_core": per_core, "cores_needed": gpu_rate / per_core}
    print(row, flush=True)
    return row


def markdown(rows: list[dict[str, Any]], device_name: str, steps: int, command: str) -> str:
    def fmt(value: Any, digits: str = ".3g") -> str:
        return "-" if value is None else format(value, digits) if isinstance(value, float) else str(value)

    lines = [f"## GPU check: {device_name}, {date.today().isoformat()}", "",
             f"`{command}`: {steps} training steps per model after {WARMUP} warm-up steps (median step, "
             f"CUDA-synchronised), random init, the bundled scenes upscaled to the crop; the input pipeline is "
             f"the task's training loader on one CPU core.", "",
             "| task | model | params (M) | px | batch | step (ms) | samples/s | peak memory (GiB) | "
             "pipeline samples/s per core | cores to feed the GPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | {fmt(r['params_m'])} | {r['size']} | {r['batch']} | "
                     f"{fmt(r['step_ms'])} | {fmt(r['samples_per_s'])} | {fmt(r['peak_gib'])} | "
                     f"{fmt(r['pipeline_per_core'])} | {fmt(r['cores_needed'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny presets at the bundled sizes (a CPU check)")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per model")
    parser.add_argument("--pipeline-batches", type=int, default=4, help="batches read to time the input pipeline")
    parser.add_argument("--output", default=str(ROOT / "docs" / "estimation.md"), help="markdown file, or - to print only")
    args = parser.parse_args(argv)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        print("gpu_check: no CUDA GPU here; --tiny runs the tiny presets on the CPU", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (tiny presets, not a GPU measurement)"
    rows = [check(case, args.steps, device, args.pipeline_batches) for case in (TINY if args.tiny else CASES)]
    command = "benchmarks/gpu_check.sh" if not args.tiny else f"python benchmarks/gpu_check.py --tiny --steps {args.steps}"
    publish(markdown(rows, name, args.steps, command), args.output, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
