"""Decoded samples kept between epochs (`task.cache: memory | disk | none`).

Decoding a COCO JPEG and its panoptic PNG costs several times what the random augmentation after it
does on small crops, and every epoch decodes the same files again. A reader that mixes in
`CachedDecoding` splits its `__getitem__` into `decode(index)` (files -> Sample, deterministic) and
its transform (random); with a cache set, the decoded Sample is taken from the cache when it is there.
The augmentation still runs on every access, so caching never changes what training sees.

- memory: a dict in the process that reads the sample. DataLoader workers are separate processes, so
  each worker fills its own cache with the samples it happens to read (the engine keeps workers alive
  across epochs, so the caches survive); memory use grows up to (workers + 1) x the decoded split.
- disk: one file per sample under `<cache dir>/decoded/<key>/`, shared by workers, runs and processes.
  Files are written to a temporary name and renamed into place, so concurrent writers never leave a
  half-written entry; an entry that does not load (truncated, from another torch) is decoded again and
  rewritten.

Keys: a split's folder name hashes the reader's class, root, split, options and its annotation file's
size and modification time; an entry's file name hashes the sample's source files (path, size,
modification time). A changed file or reader option therefore reads a different entry, never a stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from framework.errors import FrameworkError
from framework.training.data_cache import default_cache_dir
from framework.vision.sample import Sample

MODES = ("none", "memory", "disk")
FORMAT = 1  # bump when what a disk entry holds changes: old entries then live under other keys
MAGIC = b"FWSAMPLE"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_stamp(path: Path) -> tuple[str, int, int]:
    """What identifies a file's content cheaply: its path, size and modification time (ns)."""
    stat = os.stat(path)
    return str(path), stat.st_size, stat.st_mtime_ns


class SampleCache:
    """Decoded Samples of one split, in memory or on disk (see the module docstring)."""

    def __init__(self, mode: str, identity: dict[str, Any], cache_dir: str | Path | None = None):
        if mode not in ("memory", "disk"):
            raise ValueError(f"cache mode {mode!r} is not memory or disk")
        self.mode = mode
        self.key = _digest({"format": FORMAT, **identity})
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.folder = root / "decoded" / self.key
        self.memory: dict[int, Sample] = {}

    def get(self, index: int, sources: Callable[[], Iterable[Path]], decode: Callable[[], Sample]) -> Sample:
        """Sample `index`: from the cache, else `decode()` stored for next time. `sources()` lists the
        files it is decoded from (disk entries are named after them)."""
        if self.mode == "memory":
            if index not in self.memory:
                self.memory[index] = decode()
            return self.memory[index]
        path = self.folder / f"{index}-{_digest([file_stamp(p) for p in sources()])}.sample"
        if path.exists():
            try:
                return read_entry(path)
            except Exception as exc:  # any unreadable entry: decoding again is always correct
                warnings.warn(f"decoded-sample cache entry {path} is unreadable ({exc}); decoding it again",
                              stacklevel=2)
        sample = decode()
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            write_entry(temporary, sample)
            os.replace(temporary, path)  # atomic: readers see no entry or a whole one
        finally:
            temporary.unlink(missing_ok=True)
        return sample


# A disk entry: MAGIC, a little-endian uint32 header length, a JSON header (the Sample's plain fields, and
# each tensor's dtype, shape and byte range, the payload's length and CRC-32), then the tensors' bytes.
# torch.save/load cost about as much as decoding the small bundled images again; raw bytes cost a tenth.


def write_entry(path: Path, sample: Sample) -> None:
    plain, tensors, chunks, offset = {}, {}, [], 0
    for field in dataclasses.fields(sample):
        value = getattr(sample, field.name)
        if isinstance(value, torch.Tensor):
            data = value.contiguous().numpy().tobytes()
            tensors[field.name] = [str(value.dtype).removeprefix("torch."), list(value.shape), offset, len(data)]
            chunks.append(data)
            offset += len(data)
        else:
            plain[field.name] = list(value) if isinstance(value, tuple) else value
    payload = b"".join(chunks)
    header = json.dumps({"plain": plain, "tensors": tensors, "size": len(payload), "crc": zlib.crc32(payload)}).encode()
    with open(path, "wb") as handle:
        handle.write(MAGIC + struct.pack("<I", len(header)) + header + payload)


def read_entry(path: Path) -> Sample:
    """The Sample of an entry; ValueError when it is not a whole, intact entry."""
    data = bytearray(path.read_bytes())  # writable: tensors are views of it
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError("not a cache entry")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4 + length
    header = json.loads(bytes(data[len(MAGIC) + 4:start]))
    payload = memoryview(data)[start:]
    if len(payload) != header["size"] or zlib.crc32(payload) != header["crc"]:
        raise ValueError(f"truncated or damaged: {len(payload)} of {header['size']} bytes, checksum mismatch")
    fields = dict(header["plain"])
    if "orig_size" in fields:
        fields["orig_size"] = tuple(fields["orig_size"])
    for name, (dtype, shape, offset, size) in header["tensors"].items():
        kind = getattr(torch, dtype)
        fields[name] = (torch.frombuffer(payload, dtype=kind, count=size // kind.itemsize, offset=offset).view(shape)
                        if size else torch.empty(shape, dtype=kind))
    return Sample(**fields)


class CachedDecoding:
    """Mixin of the vision readers: `__getitem__` is `transform(decoded(index))`. A reader defines
    `decode(index)`, `sources(index)` (the files decode reads) and `identity()` (what, besides those
    files, determines the decoded sample: class, root, split, options)."""

    cache: SampleCache | None = None
    transform: Callable[[Sample], Sample] | None

    def decode(self, index: int) -> Sample:
        raise NotImplementedError

    def sources(self, index: int) -> list[Path]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def decoded(self, index: int) -> Sample:
        if self.cache is None:
            return self.decode(index)
        return self.cache.get(index, lambda: self.sources(index), lambda: self.decode(index))

    def __getitem__(self, index: int) -> Sample:
        sample = self.decoded(index)
        return self.transform(sample) if self.transform is not None else sample


def check_mode(mode: Any) -> str:
    """`task.cache` as given, or a FrameworkError naming the key and its values."""
    if mode is None:
        return "none"
    if mode not in MODES:
        raise FrameworkError(f"task.cache: {mode!r} is not one of {', '.join(MODES)}; "
                             "set task.cache=memory, disk or none")
    return mode


def use_cache(datasets: Iterable[Dataset | None], mode: Any, cache_dir: str | Path | None = None) -> None:
    """Give each CachedDecoding reader among `datasets` (or under a Subset of them) a cache of `mode`
    ("none" removes it)."""
    mode = check_mode(mode)
    for dataset in datasets:
        while isinstance(dataset, Subset):
            dataset = dataset.dataset
        if isinstance(dataset, CachedDecoding):
            dataset.cache = None if mode == "none" else SampleCache(mode, dataset.identity(), cache_dir)
