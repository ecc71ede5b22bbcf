"""CSV logs that survive a resume.

Lightning's CSV writer deletes an existing metrics.csv when it starts, so a run resumed after a kill
would lose the learning curve of its first attempt. This logger keeps the earlier rows before the step
of the checkpoint the run resumes from and appends. A checkpoint at global step S holds steps 0..S-1,
whose rows (training losses, and the validation that ends the epoch) Lightning logs with step <= S-1;
rows at S or later belong to work that is redone: the next epoch's steps, or the validation and test
of the checkpoints after training (logged at the final step) when the kill came while they ran.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from framework.config.file_io import atomic_write_text


def _keep_rows_before(path: Path, step: int) -> list[str]:
    """Truncate the CSV at `path` to rows with step < `step`; return its header."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if row.get("step", "") == "" or int(float(row["step"])) < step]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())
    return header


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None):
        self._resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self._resume_step is None:
            path.unlink(missing_ok=True)  # a fresh attempt starts a fresh file
        elif path.is_file():
            self.metrics_keys = _keep_rows_before(path, self._resume_step)


class ResumableCSVLogger(CSVLogger):
    """CSVLogger writing `<run_dir>/logs/metrics.csv`, continued across resumes."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        super().__init__(save_dir=run_dir, name="logs", version="")
        self._resume_step = resume_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self._resume_step)
        return self._experiment
