"""The bundled data: synthetic physiological recordings with a real, learnable signal, in the task's format.

Each sample is a 10 s window (40 steps at 4 Hz) of four channels: skin conductance (EDA), heart rate,
trapezius EMG and respiration rate, in their usual units. A stimulus starts 1.5-2.5 s into the window and
evokes a response whose size grows with its intensity: EDA rises slowly and stays up, heart rate peaks
after about a second, EMG bursts and decays, breathing slows. Both sources share this physiology, which is
what a shared encoder can learn from both:

- stimulus: 80 subjects x 30 windows, 5 balanced classes (baseline, T1..T4 heat levels); the evoked
  response scales with the applied intensity.
- pain: 80 subjects x 30 windows, 4 classes (none, mild, moderate, severe) with fewer samples at higher
  pain (40/30/20/10 %); the response scales with the felt pain, which a self-report maps to a level with
  noise, so pain is harder to read than the stimulus.

What makes it hard, as in real recordings: every subject has their own resting level on each channel
(larger than the evoked response) and their own responsiveness per channel, and every window carries
autocorrelated noise. Splitting by subject therefore matters, and reading the time course (the change
after onset) beats averaging it away (`temporal_pooling: mean`).

`prepare_synthetic` writes the files into a cache folder on first use (well under a second) and is safe
when several processes do it at once: each writes a temporary folder and renames it into place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.api import generate_once

from .features import FORMAT, MANIFEST

VERSION = 1  # bump when the generator changes: the cache folder's name includes it
PAIN_CLASSES = ("none", "mild", "moderate", "severe")
PAIN_SHARES = (0.4, 0.3, 0.2, 0.1)
STIMULUS_CLASSES = ("baseline", "T1", "T2", "T3", "T4")
CHANNELS = ("eda", "heart_rate", "emg_trapezius", "respiration")
# Per channel: resting level and spread between people in its unit, and the evoked response at full
# intensity in units of that spread.
_REST = np.array([6.0, 72.0, 0.02, 15.0])  # uS, beats/min, mV, breaths/min
_SPREAD = np.array([2.5, 9.0, 0.008, 3.0])
_RESPONSE = np.array([0.9, 0.8, 0.7, -0.5])
_STEP_SECONDS = 0.25


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; every field is part of the cache folder's name."""

    seed: int = 0
    pain_subjects: int = 80  # enough people that 15 % of them (12) make a steady validation score
    stimulus_subjects: int = 80
    windows_per_subject: int = 30
    time_steps: int = 40
    noise: float = 0.3  # autocorrelated noise, in units of the between-subject spread

    def key(self) -> str:
        text = json.dumps({"version": VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def prepare_synthetic(spec: SyntheticSpec | None = None, cache_dir: str | Path | None = None) -> Path:
    """The folder of the synthetic data of `spec`, generated on first use."""
    spec = spec or SyntheticSpec()
    return generate_once(f"multitask_pain-synthetic-v{VERSION}-{spec.key()}", lambda root: write_synthetic(root, spec),
                         cache_dir)


def write_synthetic(root: str | Path, spec: SyntheticSpec) -> Path:
    """Write manifest.json, pain.npz and stimulus.npz of `spec` under `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for index, (name, classes) in enumerate((("pain", PAIN_CLASSES), ("stimulus", STIMULUS_CLASSES))):
        rng = np.random.default_rng([spec.seed, index])  # one stream per source: each is reproducible alone
        features, labels, subjects = _recordings(rng, name, spec)
        np.savez(root / f"{name}.npz", features=features, labels=labels, subjects=subjects)
    manifest = {
        "format": FORMAT,
        "sources": {
            "pain": {"file": "pain.npz", "classes": list(PAIN_CLASSES)},
            "stimulus": {"file": "stimulus.npz", "classes": list(STIMULUS_CLASSES)},
        },
        "channels": list(CHANNELS),
        "description": f"synthetic physiological windows, tasks/multitask_pain/synthetic.py v{VERSION}",
        "generator": dataclasses.asdict(spec),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return root


def _recordings(rng: np.random.Generator, source: str, spec: SyntheticSpec):
    """features [N, T, C] float32, labels [N] int64 and subject ids [N] of one source."""
    count = spec.pain_subjects if source == "pain" else spec.stimulus_subjects
    n, steps = spec.windows_per_subject, spec.time_steps
    features, labels, subjects = [], [], []
    for subject in range(count):
        rest = rng.normal(0.0, 1.0, len(CHANNELS))  # this person's resting level per channel
        gain = rng.lognormal(0.0, 0.35, len(CHANNELS))  # and how strongly each channel responds
        if source == "pain":
            level = rng.choice(len(PAIN_CLASSES), size=n, p=PAIN_SHARES)
            # a self-report: the felt intensity behind a level varies from window to window
            intensity = np.clip((level + rng.normal(0.0, 0.35, n)) / (len(PAIN_CLASSES) - 1), 0.0, None)
        else:
            level = rng.permutation(np.arange(n) % len(STIMULUS_CLASSES))  # a balanced protocol
            intensity = level / (len(STIMULUS_CLASSES) - 1) * rng.lognormal(0.0, 0.15, n)
        onset = rng.uniform(1.5, 2.5, n) / _STEP_SECONDS
        response = _responses(onset, steps) * (intensity[:, None, None] * gain * _RESPONSE)
        noise = _ar1(rng, (n, steps, len(CHANNELS)), phi=0.7) * spec.noise
        standard = rest + response + noise
        features.append((_REST + _SPREAD * standard).astype(np.float32))
        labels.append(level.astype(np.int64))
        subjects += [f"{source[0].upper()}{subject + 1:03d}"] * n
    return np.concatenate(features), np.concatenate(labels), np.array(subjects)


def _responses(onset: np.ndarray, steps: int) -> np.ndarray:
    """[N, T, C] shapes of the evoked response per channel, 0 before onset, peak about 1."""
    s = np.arange(steps)[None, :] - onset[:, None]  # steps since onset
    after = s > 0
    s = np.where(after, s, 0.0)
    eda = 1.0 - np.exp(-s / 8.0)  # slow rise, stays up
    heart = (s / 4.0) * np.exp(1.0 - s / 4.0)  # peaks 1 s after onset, then returns
    emg = np.exp(-s / 5.0)  # a burst at onset that decays
    breath = 1.0 - np.exp(-s / 6.0)  # slows and stays slow
    return np.stack([eda, heart, emg, breath], axis=-1) * after[..., None]


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], phi: float) -> np.ndarray:
    """Noise correlated over time (unit variance), as slow physiological fluctuations are."""
    white = rng.normal(0.0, 1.0, shape)
    out = np.empty(shape)
    out[:, 0] = white[:, 0]
    scale = np.sqrt(1.0 - phi**2)
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + scale * white[:, t]
    return out
