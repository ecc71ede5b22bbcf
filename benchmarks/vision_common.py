# (imported by benchmarks/panoptic_quality.py, panoptic_step_time.py and mask_rcnn_step_time.py; not run by itself)
"""What the vision benchmarks share: the hand-written training loop the step-time benchmarks compare the
framework with, and synthetic panoptic predictions written as COCO-format files for the panoptic-quality
benchmark (what every benchmark shares is in common.py)."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from pathlib import Path

import numpy as np

from common import ROOT, median_rounds, ms_per_step
from digits_step_time import child_step_ms, framework_step_ms, setup


def step_time_arguments(description: str, epochs: int, threads: int) -> argparse.ArgumentParser:
    """The options every step-time benchmark takes (the caller adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs, help="training epochs per run (16 steps each)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of both step-time measurements; medians compared")
    parser.add_argument("--threads", type=int, default=threads, help=f"torch threads on every side (default {threads})")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="markdown file whose marked section is replaced ('-' prints only)")
    parser.add_argument("--child", choices=("reference",), help=argparse.SUPPRESS)  # one side, in its own process
    return parser


def compare_step_times(args: argparse.Namespace, overrides: list[str], script: str):
    """(medians, rounds) of ms per step: `framework run` against the hand loop (run by `script --child
    reference` in a fresh process), alternated `args.repeats` times."""
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    return median_rounds({
        "framework": lambda: framework_step_ms(args.epochs, accelerator, args.threads, overrides),
        "reference": lambda: child_step_ms("reference", args.epochs, args.device, args.threads, script),
    }, args.repeats)


def ratio_table(rows: list[dict[str, float]], median: dict[str, float]) -> list[str]:
    """The markdown rounds table of a step-time comparison and its ratio line (target <= 1.05x)."""
    ratio = median["framework"] / median["reference"]
    return [
        "| round | framework | reference | framework / reference |",
        "|---|---|---|---|",
        *(f"| {i} | {r['framework']:.1f} | {r['reference']:.1f} | {r['framework'] / r['reference']:.3f} |"
          for i, r in enumerate(rows, 1)),
        f"| **median** | **{median['framework']:.1f}** | **{median['reference']:.1f}** | **{ratio:.3f}** |",
        "",
        f"Ratio framework / reference (medians): **{ratio:.3f}x** (target <= 1.05x); median of the rounds' "
        f"own ratios: {statistics.median(r['framework'] / r['reference'] for r in rows):.3f}x.",
    ]


def hand_loop_ms(overrides: list[str], epochs: int, device: str, threads: int) -> float:
    """Milliseconds per training step of the task's network trained by a plain PyTorch loop: the adapter's
    inputs, forward (the model computes its loss), backward, the recipe's gradient clipping, the optimizer
    and scheduler steps; the network, data, optimizer and schedule are those `framework run` builds."""
    import torch
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from framework.training.run import OptimizerFactory

    config, task_module, optimizer_module = setup(epochs, threads, overrides)
    torch.manual_seed(config.engine.seed)
    factory = OptimizerFactory(optimizer_module.configure_optimizers, config)
    task, datamodule = task_module.get_task(factory, config)  # builds the network and its adapter
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    network, adapter = task.network.to(device), task.adapter
    configured = factory(task.model, epochs * len(loader))
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    parameters = [p for p in network.parameters() if p.requires_grad]
    clip = float(config.engine.gradient_clip_val)
    network.train()
    gc.collect()
    gc.freeze()  # as the engine does around fit

    def train_step(batch):
        batch = move_data_to_device(batch, device)
        loss = network(**adapter.inputs(batch)).loss
        optimizer.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, clip)
        optimizer.step()
        scheduler.step()
        return loss

    return ms_per_step(loader, epochs, device, train_step)


def write_predictions(root: Path, split: str, out: Path, seed: int = 0) -> Path:
    """COCO-format panoptic predictions for the ground truth of `root`/`split`, written to `out` (json
    + PNGs): the ground truth shifted by a few pixels, a fifth of the things given another thing class,
    an occasional thing dropped, a false square added, void filled by a neighbouring segment. Every
    predicted pixel belongs to a segment (torchmetrics counts unassigned prediction pixels differently
    from COCO, see framework/vision/metrics/panoptic.py)."""
    from PIL import Image

    from framework.vision.coco import panoptic_dir, panoptic_file
    from framework.vision.images import id_to_rgb, read_panoptic_png

    rng = np.random.default_rng(seed)
    gt = json.loads(panoptic_file(root, split).read_text())
    things = [c["id"] for c in gt["categories"] if c["isthing"]]
    (out / "pred").mkdir(parents=True, exist_ok=True)
    annotations = []
    for ann in gt["annotations"]:
        ids = read_panoptic_png(panoptic_dir(root, split) / ann["file_name"])
        shift = tuple(int(v) for v in rng.integers(-3, 4, 2))
        pred = np.roll(ids, shift, axis=(0, 1))
        # void takes the id of the pixel above it (or of the first segment at the top)
        for row in range(pred.shape[0]):
            hole = pred[row] == 0
            pred[row, hole] = pred[row - 1, hole] if row else ann["segments_info"][0]["id"]
        segments = []
        for segment in ann["segments_info"]:
            category = segment["category_id"]
            if category in things and rng.random() < 0.1:
                pred[pred == segment["id"]] = ann["segments_info"][0]["id"]  # dropped: a miss
                continue
            if category in things and rng.random() < 0.2:
                category = int(rng.choice(things))
            segments.append({"id": segment["id"], "category_id": category})
        y, x = (int(v) for v in rng.integers(0, min(pred.shape) - 12, 2))
        pred[y : y + 12, x : x + 12] = 1  # a false square with its own id
        segments.append({"id": 1, "category_id": int(rng.choice(things))})
        segments = [s for s in segments if (pred == s["id"]).any()]
        Image.fromarray(id_to_rgb(pred)).save(out / "pred" / ann["file_name"])
        annotations.append({"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": segments})
    path = out / "pred.json"
    path.write_text(json.dumps({"annotations": annotations, "categories": gt["categories"]}))
    return path
