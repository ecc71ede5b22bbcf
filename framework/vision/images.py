"""Decoding images and COCO panoptic PNGs, with errors that name the file.

COCO panoptic PNGs store each pixel's segment id in its colour: id = R + 256 * G + 256**2 * B, 0 = void.
Segment ids are arbitrary (COCO's are random colours), so `index_segments` turns an id map into
object indices (k = segment k-1 of a list, 0 = void) that the rest of the code can count and gather with.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from framework.errors import FrameworkError


def _open(path: Path, mode: str | None) -> np.ndarray:
    """The decoded pixels, converted to `mode` (None: the file's own values, e.g. a palette's indices)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            # a writable copy: torch warns about (and must not write into) PIL's read-only buffer
            return np.array(image.convert(mode) if mode is not None and image.mode != mode else image)
    except FileNotFoundError:
        raise FrameworkError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncated and corrupt files as OSError or SyntaxError; say which file it was
        raise FrameworkError(f"cannot decode image {path}: {exc}") from None


def read_image(path: str | Path) -> Tensor:
    """An RGB image file as a uint8 tensor [3, H, W] (grey and palette images are converted)."""
    array = _open(Path(path), "RGB")
    # a [3, H, W] view of the [H, W, 3] pixels, not a copy: resizing reads either layout as fast
    return torch.from_numpy(array).permute(2, 0, 1)


def read_label_png(path: str | Path) -> np.ndarray:
    """A single-channel label PNG (ADE20K annotations; palette PNGs give their indices) as [H, W]."""
    labels = _open(Path(path), None)
    if labels.ndim != 2:
        raise FrameworkError(f"label map {path} has {labels.shape[-1]} channels; expected one label per pixel")
    return labels


def read_panoptic_png(path: str | Path) -> np.ndarray:
    """A COCO panoptic PNG as a uint32 array [H, W] of segment ids (0 = void)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image = image.convert("RGB") if image.mode != "RGB" else image
            # PIL writes each pixel as the bytes R, G, B, 0: read as little-endian uint32 that is
            # R + 256 G + 256**2 B, the segment id, without a pass per channel
            raw = image.tobytes("raw", "RGBX")
            height, width = image.height, image.width
    except FileNotFoundError:
        raise FrameworkError(f"panoptic PNG not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FrameworkError(f"cannot decode panoptic PNG {path}: {exc}") from None
    return np.frombuffer(raw, dtype="<u4").reshape(height, width) & np.uint32(0xFFFFFF)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def index_segments(id_map: np.ndarray, segment_ids: list[int] | np.ndarray, source: str = "map",
                   unknown: str = "error") -> np.ndarray:
    """int32 map of object indices: k where `id_map` holds `segment_ids[k-1]`, 0 where it holds 0 (void).

    A pixel whose id is neither 0 nor listed is an error naming `source` (the PNG and its json
    disagree), or void with `unknown="void"` (predictions that leave pixels unassigned, e.g. as -1).
    Ids are looked up in a small collision-free hash table: a few passes over the map, where sorting it
    or binary-searching every pixel costs 5 to 15 times more on a 256x256 map.
    """
    flat = id_map.reshape(-1)
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"{source}: segment id maps must hold integers, not {flat.dtype}")
    # void (0) is looked up like a segment, with index 0, so one comparison finds every unknown id
    keys = np.concatenate([[0], np.asarray(segment_ids, dtype=np.int64)])
    if flat.dtype == np.uint32 and keys.max() < _COLOURS and len(keys) < 32000:
        return _index_colours(flat, keys, source, unknown).reshape(id_map.shape)
    if keys.min() < np.iinfo(flat.dtype).min or keys.max() > np.iinfo(flat.dtype).max:
        flat = flat.astype(np.int64)
    table = _hash_table(keys)
    if table is not None:
        bits, multiplier, slots = table
        table_keys = np.full(1 << bits, keys[0], dtype=flat.dtype)
        table_index = np.zeros(1 << bits, dtype=np.int32)
        table_keys[slots] = keys
        table_index[slots] = np.arange(len(keys), dtype=np.int32)
        slot = _hash(flat, bits, multiplier)
        # an empty slot holds id 0, which hashes elsewhere: no pixel can match it there
        found = table_keys[slot] == flat
        index = table_index[slot]
    else:  # hundreds of segments, or repeated collisions: a binary search per pixel
        order = np.argsort(keys, kind="stable")
        position = np.clip(np.searchsorted(keys[order], flat), 0, len(keys) - 1)
        found = keys[order][position] == flat
        index = order[position].astype(np.int32)
    if not found.all():
        if unknown == "error":
            listed = np.unique(flat[~found])[:5].tolist()
            raise FrameworkError(f"{source} has segment ids {listed} that its annotation does not list")
        index = np.where(found, index, 0).astype(np.int32)
    return index.reshape(id_map.shape)


_COLOURS = 1 << 24  # ids of panoptic PNGs are 24-bit colours
_colour_table: np.ndarray | None = None
_colour_lock = threading.Lock()


def _index_colours(flat: np.ndarray, keys: np.ndarray, source: str, unknown: str) -> np.ndarray:
    """`index_segments` for 24-bit ids (panoptic PNGs): one gather from a table over every colour.

    The table (int16, 32 MB of address space) is allocated zeroed, which the operating system provides
    without touching memory: only the pages holding the ids of an image are ever written, and they are
    set back to 0 after it. Entry 0 means "not listed", void is stored as 1 and segment k-1 as k+1.
    """
    global _colour_table
    if flat.size and int(flat.max()) >= _COLOURS:
        raise FrameworkError(f"{source} holds segment ids above 2**24, which no colour encodes")
    with _colour_lock:  # one table per process, filled per image: threads take turns
        if _colour_table is None:
            _colour_table = np.zeros(_COLOURS, dtype=np.int16)
        _colour_table[keys] = np.arange(1, len(keys) + 1, dtype=np.int16)
        try:
            looked_up = _colour_table[flat]
        finally:
            _colour_table[keys] = 0
    index = looked_up.astype(np.int32) - 1
    stray = index < 0
    if stray.any():
        if unknown == "error":
            listed = np.unique(flat[stray])[:5].tolist()
            raise FrameworkError(f"{source} has segment ids {listed} that its annotation does not list")
        index[stray] = 0
    return index


_MULTIPLIERS = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 1181783497, 3535124203, 1640531527)


def _hash_table(keys: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(bits, multiplier, slot of each key) of a hash into 2**bits slots without collisions, trying a few
    multipliers; None when every one collides. About n**2 slots keep collisions rare."""
    if len(keys) > 256 or len(np.unique(keys)) < len(keys):
        return None
    bits = max(6, int(np.ceil(np.log2(len(keys) ** 2))) + 1)
    for multiplier in _MULTIPLIERS:
        slots = _hash(keys, bits, multiplier)
        if len(np.unique(slots)) == len(keys):
            return bits, multiplier, slots
    return None


def _hash(values: np.ndarray, bits: int, multiplier: int) -> np.ndarray:
    """Multiplicative hashing of 32-bit ids into 2**bits slots: the top bits of id * multiplier mod 2**32
    mix all bits of the id, so structured ids (sequential, colours differing in one channel) spread as
    well as random ones."""
    mixed = values.astype(np.uint32, copy=False) * np.uint32(multiplier)  # wraps modulo 2**32, as intended
    return mixed >> np.uint32(32 - bits)
