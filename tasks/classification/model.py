"""Image classification with any transformers image classifier (ViT, ResNet, ...; `task.model.name`).

At each test epoch's end the confusion matrix is written to <run dir>/confusion_matrix_test.csv (and as
a figure, confusion_matrix_test.png, when matplotlib is installed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.vision.lightning import VisionTaskModel
from framework.vision.metrics.classification import ClassificationScores


class ClassificationModel(VisionTaskModel):
    kind = "classification"
    adapter_kind = "classification"
    prediction_format = "classification"  # framework predict: top-5 CSV

    def new_metric(self) -> ClassificationScores:
        return ClassificationScores(len(self.class_names), top_k=5)

    def update_metric(self, predictions, batch) -> None:
        self.metric.update(predictions, self.adapter.targets(batch))

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        run_dir = self.config["run"].get("dir") if "run" in self.config else None
        if run_dir and self.trainer.is_global_zero:
            write_confusion_matrix(self.metric.confusion_matrix(), self.class_names, Path(run_dir), "test")

    def activations(self, batch):
        outputs = self.network(pixel_values=batch.images)
        return {"logits": outputs.logits, "probabilities": outputs.logits.softmax(-1)}


def write_confusion_matrix(matrix: np.ndarray, names: list[str], run_dir: Path, split: str) -> None:
    header = "target\\predicted," + ",".join(names)
    lines = [header] + [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(names, matrix)]
    (run_dir / f"confusion_matrix_{split}.csv").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the figure is a convenience; the csv holds the numbers
        return
    size = 2 + 0.4 * len(names)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("target")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(run_dir / f"confusion_matrix_{split}.png", dpi=100)
    plt.close(fig)
