# python benchmarks/mask_rcnn_step_time.py --epochs 2 --repeats 5 --threads 1 --output docs/benchmarks.md
"""Mask R-CNN (models/mask_rcnn/, tiny preset on coco_instance's bundled scenes): `framework run`'s
training step against the same model's forward + backward in a hand-written loop, and the throughput
of the detection operations it is built on (framework/vision/ops: RoIAlign, NMS) on the CPU.

Step time as benchmarks/panoptic_step_time.py measures it: both sides train the task's network (the
plugin's mask_rcnn-tiny preset) with its adapter, the data module's training loader (bundled 128x128
scenes, flip + jitter + 128 crop, batch 16), SGD with the optimizer plugin's groups, the task's step
schedule and gradient clipping (global norm 5.0); each side in a fresh process, in alternating order,
and the medians compared. The reference is plain PyTorch: inputs, forward (the model computes its
losses), zero_grad, backward, clip, step, scheduler step.

Operations, forward and forward + backward, median of `--op-repeats` timings in this process:
- RoIAlign: the box head's pooling of a training step at Mask R-CNN's real size (2 images of 800 x 1088,
  a 256-channel P2-P5 pyramid, 512 sampled boxes per image, 7x7 bins, sampling ratio 2), in boxes per second;
- NMS: the RPN's proposal NMS (IoU 0.7) of one image, 1000 to 5000 scored boxes around 50 objects,
  in milliseconds per call.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date

from common import machine, publish
from vision_common import compare_step_times, hand_loop_ms, ratio_table, step_time_arguments

OVERRIDES = ["tasks=coco_instance", "optimizers=sgd_baseline", "task.model.name=mask_rcnn-tiny", "task.crop_size=128",
             "task.eval_short=128", "task.eval_max_size=512", "optimizer.learning_rate=0.02"]
SECTION = "mask_rcnn_step_time"


def reference(epochs: int, device: str, threads: int) -> float:
    """The hand-written loop; returns milliseconds per training step."""
    return hand_loop_ms(OVERRIDES, epochs, device, threads)


def _median_seconds(work, repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def roi_align_rates(repeats: int) -> dict[str, float]:
    """Boxes per second through the multi-level RoIAlign, forward and forward + backward."""
    import torch

    from framework.vision.ops import multiscale_roi_align

    generator = torch.Generator().manual_seed(0)
    strides = [4, 8, 16, 32]
    features = [torch.randn(2, 256, 800 // s, 1088 // s, generator=generator, requires_grad=True) for s in strides]
    corner = torch.rand(1024, 2, generator=generator) * torch.tensor([1000.0, 700.0])
    size = 8 + torch.rand(1024, 2, generator=generator) ** 2 * 400  # mostly small boxes, as proposals are
    rois = torch.cat([torch.arange(2).repeat_interleave(512)[:, None].float(), corner, corner + size], dim=1)

    def forward():
        with torch.no_grad():
            multiscale_roi_align(features, strides, rois, 7, 2)

    def backward():
        multiscale_roi_align(features, strides, rois, 7, 2).sum().backward()

    return {"forward": len(rois) / _median_seconds(forward, repeats),
            "forward + backward": len(rois) / _median_seconds(backward, repeats)}


def nms_times(repeats: int) -> dict[int, tuple[float, int]]:
    """Milliseconds per NMS call (IoU 0.7) and the boxes kept, for 1000 to 5000 boxes; and batched NMS
    of 10000 boxes in 5 groups (the RPN's 5 levels x 2000 proposals of one image at the paper's size)."""
    import torch

    from framework.vision.ops import batched_nms, nms

    generator = torch.Generator().manual_seed(0)
    out: dict = {}
    for count in (1000, 2000, 5000):
        centres = torch.rand(50, 2, generator=generator) * 800
        sizes = 20 + torch.rand(50, 2, generator=generator) * 200
        owner = torch.randint(0, 50, (count,), generator=generator)
        # proposals scattered around their object by 15 % of its size, as a trained RPN's are
        noise = 0.15 * torch.randn(count, 4, generator=generator)
        centre = centres[owner] + sizes[owner] * noise[:, :2]
        half = sizes[owner] / 2 * (1 + noise[:, 2:]).clamp(min=0.2)
        boxes, scores = torch.cat([centre - half, centre + half], dim=1), torch.rand(count, generator=generator)
        kept = len(nms(boxes, scores, 0.7))
        out[count] = (1000 * _median_seconds(lambda b=boxes, s=scores: nms(b, s, 0.7), repeats), kept)
    boxes, scores = torch.cat([boxes] * 2), torch.cat([scores, scores.flip(0)])
    levels = torch.arange(5).repeat_interleave(2000)
    kept = len(batched_nms(boxes, scores, levels, 0.7))
    out["10000 in 5 groups"] = (1000 * _median_seconds(lambda: batched_nms(boxes, scores, levels, 0.7), repeats), kept)
    return out


def _markdown(args, rows, median, rates, nms) -> str:
    command = (f"python benchmarks/mask_rcnn_step_time.py --epochs {args.epochs} --repeats {args.repeats} "
               f"--threads {args.threads} --device {args.device}")
    return "\n".join([
        (f"Measured {date.today().isoformat()} with `{command}` on {machine()}, a VM whose 2 CPUs were shared "
         f"with other agents' jobs during the measurement; {args.threads} torch thread(s) on every side. "
         "Training step: ms per step (batch 16)."),
        "",
        *ratio_table(rows, median),
        "",
        "| RoIAlign, 1024 boxes on a 2 x 256 x 800 x 1088 pyramid | boxes / s |",
        "|---|---|",
        *(f"| {name} | {rate:.0f} |" for name, rate in rates.items()),
        "",
        "| NMS at IoU 0.7: boxes | ms per call | boxes kept |",
        "|---|---|---|",
        *(f"| {count} | {ms:.1f} | {kept} |" for count, (ms, kept) in nms.items()),
    ])


def main() -> int:
    parser = step_time_arguments(__doc__.splitlines()[0], epochs=2, threads=1)
    parser.add_argument("--op-repeats", type=int, default=5, help="timings of each operation; the median is reported")
    args = parser.parse_args()
    if args.child:
        print(reference(args.epochs, args.device, args.threads))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    rates, nms = roi_align_rates(args.op_repeats), nms_times(args.op_repeats)
    print(rates, nms, flush=True)
    median, rows = compare_step_times(args, OVERRIDES, __file__)
    publish(_markdown(args, rows, median, rates, nms), args.output, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
