# python benchmarks/panoptic_pipeline.py --images 48 --rounds 5 --output docs/benchmarks.md   (needs transformers)
"""Samples per second of one data-loading worker for COCO panoptic training: ours against transformers'
Mask2FormerImageProcessor doing the same work.

Data: 640x480 synthetic COCO panoptic images (JPEG + PNG), the size of COCO's. Each sample, on both
sides: decode the JPEG and the panoptic PNG, turn colours into segment ids, flip with probability 0.5,
large-scale jitter (scale 0.1-2.0) with a 1024x1024 crop, normalise, pad to 1024x1024, and build
Mask2Former's targets: one binary mask per non-crowd segment and its class, void and crowd left out.

- ours: `CocoPanoptic(root, "train", transform=train_transforms(1024))` and `mask_targets` (bool masks).
- transformers: PIL decoding, numpy for ids, flip and crop, then `Mask2FormerImageProcessor` (its PIL
  backend: torchvision is not installed) resizing the crop window to its jittered size, normalising,
  padding to 1024 and converting the id map into masks and class labels (float32 masks, as it makes them).
  The crop is taken before the resize here, which spares this side resampling pixels outside the
  window: the reference does a little less work than ours.

Both sides draw the same flips and jitter (the same `LargeScaleJitter.params` and seeds), one process,
one torch thread; rounds alternate the order and medians are compared.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch
from common import ROOT, machine, median_rounds, publish, seconds

SIZE = 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="'-' prints only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import transformers
        from transformers.image_utils import SizeDict
        from transformers.models.mask2former.image_processing_pil_mask2former import Mask2FormerImageProcessorPil
    except ImportError:
        raise SystemExit("this benchmark compares against transformers: pip install transformers") from None
    from PIL import Image

    from framework.vision.coco import CocoPanoptic, image_dir, panoptic_dir
    from framework.vision.images import rgb_to_id
    from framework.vision.synthetic import SyntheticCocoSpec, prepare_synthetic_coco
    from framework.vision.targets import mask_targets
    from framework.vision.transforms import LargeScaleJitter, train_transforms

    root = prepare_synthetic_coco(SyntheticCocoSpec(height=480, width=640, train=args.images, val=0, test=0),
                                  Path(tempfile.mkdtemp(prefix="pipeline_bench_")))
    ours = CocoPanoptic(root, "train", transform=train_transforms(SIZE))
    plain = CocoPanoptic(root, "train")  # only for its records
    processor = Mask2FormerImageProcessorPil()
    jitter = LargeScaleJitter(SIZE)
    counts = {}

    def run_ours() -> None:
        total = 0
        for index in range(len(ours)):
            torch.manual_seed(index)  # the flip and the jitter draw from the global generator, as in a worker
            masks, labels = mask_targets(ours[index])
            total += len(labels)
        counts["ours"] = total

    def run_reference() -> None:
        total = 0
        for index in range(len(plain)):
            record = plain.records[index]
            # the same random draws as ours: the flip's, then the jitter's
            generator = torch.Generator().manual_seed(index)
            flip = float(torch.rand((), generator=generator)) < 0.5
            with Image.open(image_dir(root, "train") / record["file_name"]) as image:
                pixels = np.asarray(image.convert("RGB"))
            with Image.open(panoptic_dir(root, "train") / record["png"]) as png:
                ids = rgb_to_id(np.asarray(png.convert("RGB")))
            # segment i -> instance id i; void and crowd -> 255, which the processor leaves out
            instance = np.full(ids.shape, 255, dtype=np.int32)
            for i, (segment, crowd) in enumerate(zip(record["segment_ids"], record["iscrowd"])):
                if not crowd:
                    instance[ids == segment] = i
            if flip:
                pixels, instance = pixels[:, ::-1], instance[:, ::-1]
            height, width = ids.shape
            new_h, new_w, top, left, crop_h, crop_w = jitter.params(height, width, generator)
            scale_y, scale_x = new_h / height, new_w / width
            y0, x0 = int(top / scale_y), int(left / scale_x)
            y1, x1 = min(height, int(np.ceil((top + crop_h) / scale_y))), min(width, int(np.ceil((left + crop_w) / scale_x)))
            encoded = processor(
                images=np.ascontiguousarray(pixels[y0:y1, x0:x1]), segmentation_maps=np.ascontiguousarray(instance[y0:y1, x0:x1]),
                instance_id_to_semantic_id={i: label for i, label in enumerate(record["labels"])},
                size={"height": crop_h, "width": crop_w}, size_divisor=0, pad_size=SizeDict(height=SIZE, width=SIZE),
                ignore_index=255, return_tensors="pt",
            )
            total += len(encoded["class_labels"][0])
        counts["reference"] = total

    def per_second(work):
        return lambda: args.images / seconds(work)

    print(f"{args.images} samples 640x480 -> {SIZE}x{SIZE}: samples/s", flush=True)
    medians, rows = median_rounds({"ours": per_second(run_ours), "transformers": per_second(run_reference)}, args.rounds)
    ratio = medians["ours"] / medians["transformers"]
    snippet = "\n".join([
        f"Measured {date.today().isoformat()} with `python benchmarks/panoptic_pipeline.py --images {args.images} "
        f"--rounds {args.rounds}` on {machine()}, transformers {transformers.__version__}; one process, one torch "
        "thread. Samples per second of one worker (higher is better).",
        "",
        "| round | ours | transformers' Mask2FormerImageProcessor | ours / transformers |",
        "|---|---|---|---|",
        *(f"| {i} | {r['ours']:.1f} | {r['transformers']:.1f} | {r['ours'] / r['transformers']:.2f} |"
          for i, r in enumerate(rows, 1)),
        f"| **median** | **{medians['ours']:.1f}** | **{medians['transformers']:.1f}** | **{ratio:.2f}** |",
        "",
        f"Ours / transformers (medians): **{ratio:.2f}x** (target >= 2x). Masks built per pass: "
        f"{counts['ours']} ours, {counts['reference']} transformers (the crop windows are rounded differently at "
        "their edges, so a sliver of a segment can survive on one side only).",
    ])
    publish(snippet, args.output, "panoptic_pipeline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
