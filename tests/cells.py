# imported by tests/test_training_options.py, test_data_errors.py, test_evaluate.py, test_estimate.py, test_locks.py, test_loggers.py
"""Helpers for tests that train one grid cell in this process through `run.execute`, the code path of
`framework run`, and a user task plugin that reads image files and annotation files from disk."""

from __future__ import annotations

import json
from pathlib import Path

from framework.config import parse_overrides
from framework.config.grid import RunSpec, expand
from framework.config.registry import Registry
from framework.results.run_folder import read_scores, read_status
from framework.training.run import Outcome, execute

DIGITS_FAST = ("tasks=digits", "task.max_epochs=2")


def run_cell(output: Path, *overrides: str, plugin_paths: tuple[str, ...] = ()) -> tuple[RunSpec, Outcome, Path]:
    """Expand `overrides` to exactly one run and train it with `run.execute`; (spec, outcome, run dir)."""
    registry = Registry(list(plugin_paths))
    (spec,) = expand(parse_overrides([*overrides, f"engine.output_dir={output}"]), registry)
    outcome = execute(spec, registry)
    return spec, outcome, spec.run_dir(output)


def status_and_scores(run_dir: Path) -> tuple[dict, dict]:
    return read_status(run_dir) or {}, read_scores(run_dir) or {}


FILES_DATA = '''
"""Images (8x8 grey PNG files) listed with their labels in an annotation file, read with the framework's
named-error helpers; task.annotations picks annotations.json or labels.csv."""
from pathlib import Path

import torch
from torch.utils.data import Dataset

from framework.training.data_files import load_image, read_csv, read_json
from framework.training.task import TaskDataModule


class ImageFiles(Dataset):
    def __init__(self, root, rows):
        self.root, self.rows = Path(root), rows

    def __len__(self):
        return len(self.rows)

    def sample_source(self, index):
        return str(self.root / self.rows[index]["file"])

    def __getitem__(self, index):
        image = load_image(self.sample_source(index), mode="L")
        pixels = torch.tensor(list(image.getdata()), dtype=torch.float32) / 255.0
        return pixels, int(self.rows[index]["label"])


class FilesDataModule(TaskDataModule):
    def setup(self, stage=None):
        if self.data_train is not None:
            return
        root = Path(self.config.task.data_dir)
        if self.config.task.annotations.endswith(".json"):
            rows = read_json(root / self.config.task.annotations)
        else:
            rows = read_csv(root / self.config.task.annotations, columns=("file", "label", "split"))
        self.data_train, self.data_val, self.data_test = (
            ImageFiles(root, [r for r in rows if r["split"] == split]) for split in ("train", "val", "test"))
'''

FILES_MODEL = '''
from torch import nn
from torch.nn import functional as F

from framework.training.task import TaskModel


class FilesModel(TaskModel):
    def __init__(self, optimizer, config):
        super().__init__(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4)), optimizer, config)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log_train_loss(loss, batch_size=len(y))
        return loss

    def _evaluate(self, batch, split):
        x, y = batch
        logits = self.model(x)
        self.log_scalars({f"{split}_loss": F.cross_entropy(logits, y),
                          f"{split}_acc": (logits.argmax(1) == y).float().mean()}, batch_size=len(y))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")
'''

FILES_TASK = '''
from .data import FilesDataModule
from .model import FilesModel


def get_datamodule(config):
    return FilesDataModule(config)


def get_task(optimizer, config):
    return FilesModel(optimizer, config), get_datamodule(config)
'''

FILES_DEFAULTS = '''
task:
  name: files
  batch_size: 8
  max_epochs: 2
  max_steps: null
  target_metric: val_acc
  target_metric_mode: max
  data_dir: "{data_dir}"
  annotations: annotations.json
engine:
  devices: 1
  sbatch_args:
    time: "00:05:00"
evaluation:
  plot:
    metric: test_acc
    test_metric_mode: max
    format: ".3f"
    limits: null
optimizer:
  name: adamw_baseline
'''


def files_plugin(root: Path, splits: dict[str, int] | None = None) -> tuple[Path, Path]:
    """A user plugin folder with the task `files` and its data folder: (plugin root, data dir).

    The data holds PNG images (4 classes of 8x8 patterns) listed in annotations.json and labels.csv
    with their split; `splits` gives the number of images per split (default 32 train, 16 val, 16 test).
    """
    from PIL import Image

    splits = splits or {"train": 32, "val": 16, "test": 16}
    data = root / "data"
    (data / "images").mkdir(parents=True)
    rows = []
    for split, count in splits.items():
        for i in range(count):
            label = i % 4
            name = f"images/{split}_{i:03d}.png"
            pixels = bytes(255 if (p // 8 + p % 8 + label) % 4 == 0 else 0 for p in range(64))
            Image.frombytes("L", (8, 8), pixels).save(data / name)
            rows.append({"file": name, "label": str(label), "split": split})
    (data / "annotations.json").write_text(json.dumps(rows, indent=1))
    (data / "labels.csv").write_text("file,label,split\n" + "".join(f"{r['file']},{r['label']},{r['split']}\n" for r in rows))
    task = root / "plugins" / "tasks" / "files"
    task.mkdir(parents=True)
    (task / "data.py").write_text(FILES_DATA)
    (task / "model.py").write_text(FILES_MODEL)
    (task / "task.py").write_text(FILES_TASK)
    (task / "default.yaml").write_text(FILES_DEFAULTS.format(data_dir=data))
    (task / "README.md").write_text("# files\n\nImages read from files, for the tests of data errors.\n")
    return root / "plugins", data
