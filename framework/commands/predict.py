"""`framework predict`: a trained run's model on new input files, predictions in the task's standard formats.

    framework predict results/coco_panoptic/adamw_baseline/1a2b3c4d5e6f photos/ -o predictions
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

EPILOG = """\
examples:
  framework predict results/classification/adamw_baseline/1a2b3c4d5e6f photos/             # a folder
  framework predict RUN_DIR 'photos/*.jpg' street.png -o out/                               # a glob and a file
  framework predict RUN_DIR/checkpoints/last.ckpt scene.jpg                                 # one checkpoint
  framework predict results/digits/adamw_baseline/1a2b3c4d5e6f digits.npy                   # [N, 64] or [N, 8, 8]

The task is rebuilt from the config stored in the checkpoint and its weights are loaded weights-only
(safe). What each task writes (docs/predict.md): classification predictions.csv (top-k per image);
coco_detection / coco_instance COCO results json (detections.json) with images.json; semantic_segmentation
one PNG label map per image; coco_panoptic COCO panoptic json + PNGs; digits and multitask_pain a CSV;
the vision tasks also draw overlays/ (boxes, masks, colours with class names) for a person to look at.
Exit status 2 for bad input: no such run, a run that has not finished, an unreadable input file.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "predict", help="predict on new images or arrays with a trained run's checkpoint",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT", help="a finished run's directory or a .ckpt file")
    parser.add_argument("inputs", metavar="INPUT", nargs="+",
                        help="input files, folders (their files of the task's types) or glob patterns")
    parser.add_argument("-o", "--output", type=Path, default=Path("predictions"),
                        help="folder for the predictions (default ./predictions)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint of a run directory (default best)")
    parser.add_argument("--device", metavar="NAME", help="e.g. cpu or cuda:0; default: cuda when there is one")
    parser.add_argument("--plugin-path", action="append", default=[], metavar="DIR", help="extra plugin folder (repeatable)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.training.predict import predict

    written = predict(args.path, args.inputs, args.output, args.checkpoint, args.plugin_path, args.device)
    kinds = Counter(path.suffix or path.name for path in written)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"{len(written)} files written to {args.output} ({summary})")
    return 0
