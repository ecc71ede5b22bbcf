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
from lightning.pytorch.utilities import rank_zero_only

from framework.config.file_io import atomic_write_text


def _keep_rows_before(path: Path, step: int) -> None:
    """Truncate the CSV at `path` to rows with step < `step`."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if row.get("step", "") == "" or int(float(row["step"])) < step]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


class _ContinuingWriter(ExperimentWriter):
    """Appends to the metrics.csv that ResumableCSVLogger prepared (never deletes it)."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():  # rows written before: keep them, and their columns
            with path.open(newline="") as fh:
                self.metrics_keys = list(csv.DictReader(fh).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """CSVLogger writing `<run_dir>/logs/metrics.csv`, continued across resumes.

    The file is prepared once, here, in the process that starts the attempt: a fresh attempt removes it,
    a resumed one keeps the rows before its checkpoint. The writer then only appends, however many
    processes take turns at it: Lightning's ddp_spawn unpickles this logger in new processes for fit and
    again for test, and a writer that started a fresh file each time kept only the test rows."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        super().__init__(save_dir=run_dir, name="logs", version="")
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if rank_zero_only.rank != 0:  # every process of a SLURM multi-device run builds this: one prepares
            return
        if resume_step is None:
            path.unlink(missing_ok=True)  # a fresh attempt starts a fresh file
        elif path.is_file():
            _keep_rows_before(path, resume_step)

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir)
        return self._experiment
