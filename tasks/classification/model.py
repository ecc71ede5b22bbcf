"""Image classification with any transformers image classifier (ViT, ResNet, ...; `task.model.name`).

At each test epoch's end the confusion matrix of the tested checkpoint is drawn with TaskModel.save_figure
into <run dir>/figures/<best|last>/confusion_matrix_test.png (`framework plot` and `framework report`
show it), its counts beside it in confusion_matrix_test.csv.
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
        matrix = self.metric.confusion_matrix()
        path = self.save_figure(confusion_figure(matrix, self.class_names), "confusion_matrix_test",
                                "confusion matrix on the test set: rows the true class, columns the predicted one")
        if path is not None:
            write_confusion_csv(matrix, self.class_names, path.with_suffix(".csv"))

    def activations(self, batch):
        outputs = self.network(pixel_values=batch.images)
        return {"logits": outputs.logits, "probabilities": outputs.logits.softmax(-1)}


def write_confusion_csv(matrix: np.ndarray, names: list[str], path: Path) -> None:
    header = "target\\predicted," + ",".join(names)
    lines = [header] + [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(names, matrix)]
    path.write_text("\n".join(lines) + "\n")


def confusion_figure(matrix: np.ndarray, names: list[str]):
    """The counts as a matplotlib Figure (not pyplot's: a run keeps no global figure state)."""
    from matplotlib.figure import Figure

    size = 2 + 0.4 * len(names)
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("target")
    brightest = matrix.max() if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        # white on the dark end of the scale, where black text would vanish
        ax.text(j, i, str(int(value)), ha="center", va="center", fontsize=7,
                color="white" if brightest and value > 0.6 * brightest else "black")
    return fig
