"""The mean and std a task's images are normalised with: those the model was pretrained with.

A pretrained model expects its inputs normalised as in its pretraining; feeding it ImageNet statistics
when it was trained with others (0.5/0.5 for many ViTs, CLIP's own values) shifts every input and
handicaps whichever optimizer fine-tunes it. So:

- a random-init preset (`tiny`, `vit-tiny`, a model plugin's, ...) is normalised with the ImageNet mean and std (the
  tasks' documented default: nothing was pretrained); a preset with a pretrained `task.model.backbone`
  is normalised as that backbone's folder (or hub id) says, by the rules below;
- a local `save_pretrained` folder with a `preprocessor_config.json` (what an image processor's
  `save_pretrained` writes) uses its `image_mean` and `image_std` (mean 0, std 1 when it says
  `do_normalize: false`), and says so on stderr;
- a folder without one, or a hub id whose processor file is not in the local Hugging Face cache
  (nothing is downloaded for it), warns and uses ImageNet's values;
- a `preprocessor_config.json` that is there but unreadable (not JSON, no or malformed
  image_mean/image_std, a std that is not positive) fails the run with one line naming the file: a
  broken file is a mistake to fix, not a reason to train with other statistics.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError
from framework.vision.geometry import IMAGENET_MEAN, IMAGENET_STD
from framework.vision.models import PRESETS

PROCESSOR_FILE = "preprocessor_config.json"


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # where the values come from, for messages: a file, or "ImageNet (...)"


def _channels(path: Path, key: str, value: Any) -> tuple[float, ...]:
    values = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if (not isinstance(values, list) or len(values) not in (1, 3)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise FrameworkError(f"{path}: {key} must be a number or a list of 1 or 3 numbers (one per RGB channel), got {value!r}")
    return tuple(float(v) for v in (values * 3 if len(values) == 1 else values))


def read_processor_file(path: Path) -> Normalization:
    """The normalisation a `preprocessor_config.json` describes; one clear line when it cannot be used."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameworkError(f"{path}: not a readable JSON file ({str(exc).splitlines()[0]}); fix or remove it") from None
    if not isinstance(saved, dict):
        raise FrameworkError(f"{path}: expected a JSON object, got {type(saved).__name__}")
    if saved.get("do_normalize") is False:  # the model takes pixels in [0, 1] as they are
        return Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), f"{path} (do_normalize: false)")
    missing = [key for key in ("image_mean", "image_std") if key not in saved]
    if missing:
        raise FrameworkError(f"{path}: no {' or '.join(missing)} (the processor's normalisation); fix or remove the file")
    mean, std = _channels(path, "image_mean", saved["image_mean"]), _channels(path, "image_std", saved["image_std"])
    if any(s <= 0 for s in std):
        raise FrameworkError(f"{path}: image_std must be positive, got {list(std)}")
    return Normalization(mean, std, str(path))


def _cached_hub_file(repo_id: str) -> Path | None:
    """The hub model's processor file if the local Hugging Face cache has it (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, PROCESSOR_FILE)
    except Exception:  # noqa: BLE001  (an id the hub library refuses is simply not cached)
        return None
    return Path(found) if isinstance(found, str) else None


@functools.cache  # one message per model and process, however many datasets ask
def model_normalization(name: str, backbone: str | None = None, plugin_paths: tuple[str, ...] = ()) -> Normalization:
    """How images for the model `task.model.name` (with `task.model.backbone`) are normalised (module
    docstring). `plugin_paths` (engine.plugin_paths) are searched for model plugins' presets."""
    from framework.vision.model_plugins import plugin_presets

    imagenet = Normalization(IMAGENET_MEAN, IMAGENET_STD, "ImageNet")
    if name in {preset for _, preset in PRESETS} or name in plugin_presets(None, plugin_paths):
        if not backbone:
            return imagenet
        name = str(backbone)  # a pretrained backbone's features expect its own pretraining statistics
    path = Path(name).expanduser()
    local = name.startswith((".", "/", "~")) or path.exists()
    found = (path / PROCESSOR_FILE if (path / PROCESSOR_FILE).is_file() else None) if local else _cached_hub_file(name)
    if found is None:
        where = f"in {path}" if local else f"in the local Hugging Face cache for '{name}'"
        warnings.warn(f"no {PROCESSOR_FILE} {where}: normalising images with the ImageNet mean and std, which may "
                      f"not be what the model was pretrained with (save its image processor with save_pretrained "
                      f"into the model folder)", stacklevel=2)
        return imagenet
    normalization = read_processor_file(found)
    print(f"{name}: normalising images with image_mean {list(normalization.mean)} and image_std "
          f"{list(normalization.std)} from {normalization.source}", file=sys.stderr, flush=True)
    return normalization


__all__ = ["PROCESSOR_FILE", "Normalization", "model_normalization", "read_processor_file"]
