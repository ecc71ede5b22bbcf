"""The task's on-disk format: a manifest and one .npz file per source, read with errors that name the file.

    <data_dir>/manifest.json
    <data_dir>/pain.npz            (file names as the manifest gives them)
    <data_dir>/stimulus.npz

manifest.json names each source's file and its classes, in label order:

    {"format": "multitask_pain/1",
     "sources": {"pain":     {"file": "pain.npz",     "classes": ["none", "mild", "moderate", "severe"]},
                 "stimulus": {"file": "stimulus.npz", "classes": ["baseline", "T1", "T2", "T3", "T4"]}},
     "channels": ["eda", "heart_rate", "emg_trapezius", "respiration"]}      (optional, for people)

Each .npz holds three arrays over the same N samples (np.savez, no pickled objects):

    features   float   [N, D] (one vector per sample) or [N, T, C] (T time steps of C channels)
    labels     int     [N], an index into the source's `classes`
    subjects   int/str [N], who was recorded. Ids are global: the same id in both files is the same
               person, and lands in one split

Both sources feed one encoder, so their samples must have the same shape. The manifest's class lists are
the one source of truth for the class counts: the model's heads are sized from them.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.api import DataError, read_json

FORMAT = "multitask_pain/1"
MANIFEST = "manifest.json"
SOURCES = ("pain", "stimulus")  # the heads, in this order everywhere: manifest keys, metrics, activations
ARRAYS = ("features", "labels", "subjects")
POOLINGS = ("none", "mean", "max")  # temporal_pooling of time series; "none" flattens [T, C] to T*C
FORMAT_HELP = "see tasks/multitask_pain/README.md, 'Data format'"
_SHOWN = 5  # bad samples listed in an error; the rest are counted


@dataclass(frozen=True)
class Source:
    """One source's samples as read from its file (features still unpooled)."""

    name: str
    path: Path
    classes: tuple[str, ...]
    features: np.ndarray  # float32 [N, D] or [N, T, C]; [0] for an empty file that has no sample shape
    labels: np.ndarray  # int64 [N]
    subjects: np.ndarray  # str [N]

    @property
    def sample_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample, or None when this file cannot tell (no samples and no shape)."""
        return tuple(self.features.shape[1:]) if self.features.ndim >= 2 else None


def read_manifest(data_dir: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """{source: (feature file, class names)} from `data_dir/manifest.json`, checked."""
    path = data_dir / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DataError(f'{path}: "format" must be "{FORMAT}", got {found!r}; {FORMAT_HELP}')
    sources = manifest.get("sources")
    if not isinstance(sources, dict) or sorted(sources) != sorted(SOURCES):
        found = sorted(sources) if isinstance(sources, dict) else sources
        raise DataError(f'{path}: "sources" must have exactly the entries {", ".join(SOURCES)}, got {found!r}; {FORMAT_HELP}')
    entries = {}
    for name in SOURCES:
        entry = sources[name]
        file = entry.get("file") if isinstance(entry, dict) else None
        classes = entry.get("classes") if isinstance(entry, dict) else None
        if not isinstance(file, str) or not file:
            raise DataError(f'{path}: sources.{name}.file must be the name of an .npz file, got {file!r}')
        if (not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes)
                or not all(isinstance(c, (str, int)) for c in classes)):
            raise DataError(f"{path}: sources.{name}.classes must list at least 2 distinct class names in label "
                            f"order, got {classes!r}")
        entries[name] = (data_dir / file, tuple(str(c) for c in classes))
    return entries


def load_source(name: str, path: Path, classes: tuple[str, ...]) -> Source:
    """Read and check one source file. A missing or corrupt file, a missing array, arrays of different
    lengths, and samples with non-finite features or a label outside the classes are DataErrors naming
    the file (and the samples by their index in it): one bad sample would otherwise turn the loss into
    NaN or index past the head's logits mid-run."""
    arrays = _read_npz(path)
    features, labels, subjects = (arrays[key] for key in ARRAYS)
    count = len(labels) if labels.ndim == 1 else -1
    if count < 0 or subjects.shape != (count,) or features.shape[:1] != (count,):
        shapes = ", ".join(f"{key} {arrays[key].shape}" for key in ARRAYS)
        raise DataError(f"{path}: features, labels and subjects must have one entry per sample, got {shapes}")
    if features.ndim not in (2, 3) and not (features.ndim == 1 and count == 0):
        raise DataError(f"{path}: features must be [N, D] vectors or [N, T, C] time series, got shape {features.shape}")
    if not (np.issubdtype(features.dtype, np.floating) or np.issubdtype(features.dtype, np.integer)):
        raise DataError(f"{path}: features must be numbers, got dtype {features.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels must be integer class indices, got dtype {labels.dtype}; "
                        f"save labels.astype(np.int64)")
    features = features.astype(np.float32, copy=False)
    labels = labels.astype(np.int64, copy=False)
    _check_samples(path, features, labels, classes)
    return Source(name, path, classes, features, labels, subjects.astype(str))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARRAYS if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (has {', '.join(archive.files) or 'none'}); "
                                f"each source file needs {', '.join(ARRAYS)}")
            return {key: archive[key] for key in ARRAYS}  # read now: a corrupt member fails here, named
    except FileNotFoundError:
        raise DataError(f"{path}: feature file not found; check task.data_dir and the file names in its {MANIFEST}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the feature file ({type(exc).__name__}: {exc}); it is corrupt, "
                        f"truncated or not an .npz written by np.savez") from None


def _check_samples(path: Path, features: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> None:
    """Every sample finite and labelled within the classes; the bad ones listed by index."""
    finite = np.isfinite(features).all(axis=tuple(range(1, features.ndim)))  # per sample, whatever its shape
    in_range = (labels >= 0) & (labels < len(classes))
    bad = np.flatnonzero(~finite | ~in_range)
    if not len(bad):
        return
    reasons = []
    for index in bad[:_SHOWN]:
        why = [] if finite[index] else ["features not finite (NaN or inf)"]
        why += [] if in_range[index] else [f"label {labels[index]} outside 0..{len(classes) - 1}"]
        reasons.append(f"sample {index}: {' and '.join(why)}")
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    raise DataError(f"{path}: {len(bad)} bad sample(s): {'; '.join(reasons)}{more}; repair or drop them in the "
                    f"file ({len(classes)} classes in {MANIFEST})")


@dataclass(frozen=True)
class InputShape:
    """What the encoder sees: the raw sample shape and the input size it pools to."""

    sample_shape: tuple[int, ...]
    size: int


def pool(features: np.ndarray, temporal_pooling: str) -> np.ndarray:
    """[N, F] encoder inputs. Time series [N, T, C] are flattened ("none") or pooled over time ("mean",
    "max"); vectors [N, D] have no time axis and pass through whatever the setting."""
    if features.ndim == 2:
        return features
    if temporal_pooling == "mean":
        return features.mean(axis=1)
    if temporal_pooling == "max":
        return features.max(axis=1)
    return features.reshape(len(features), -1)


def detect_input_shape(sources: list[Source], temporal_pooling: str) -> InputShape:
    """The one place the input shape is decided: from every source whose file can tell (an empty file
    saved without a sample shape cannot). The sources that tell must agree; when none can, the error names
    them all."""
    told = [(source, source.sample_shape) for source in sources if source.sample_shape is not None]
    if not told:
        names = " nor ".join(f"{s.name} ({s.path}: features shape {s.features.shape})" for s in sources)
        raise DataError(f"cannot detect the input shape: neither {names} has samples or a sample shape; "
                        f"save features as [N, D] or [N, T, C] arrays")
    shapes = {shape for _, shape in told}
    if len(shapes) > 1:
        found = ", ".join(f"{s.name} ({s.path}) {list(shape)}" for s, shape in told)
        raise DataError(f"the sources' samples differ in shape: {found}; one encoder reads both, so convert them "
                        f"to one shape (same channels, resampled to the same length)")
    shape = told[0][1]
    # The size comes from pooling a zero sample with the same function the data goes through, so the
    # model's input size and the data can never disagree.
    size = pool(np.zeros((1, *shape), dtype=np.float32), temporal_pooling).shape[1]
    return InputShape(shape, int(size))
