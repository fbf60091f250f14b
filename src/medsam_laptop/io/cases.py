"""The challenge's npz contract: read and validate cases, write `segs` atomically (`case_files.py` finds them).

A 2D case (name not starting with "3D") holds `imgs` (H, W, 3) uint8 and `boxes` (N, 4)
[x_min, y_min, x_max, y_max]; a 3D case holds `imgs` (D, H, W) uint8 and `boxes` (N, 6)
[x_min, y_min, z_min, x_max, y_max, z_max]. Coordinates are pixel indices, max inclusive.
"""

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_atomically
from .case_files import is_3d_name
from .npz import NpzError, read_arrays

MAX_IMAGE_BYTES = int(os.environ.get("MEDSAM_MAX_IMAGE_MB", "3072")) << 20  # -m 8G leaves room for 3 GiB


class CaseError(Exception):
    """A case that cannot be segmented; the message is one line naming the problem."""


@dataclass
class Case:
    image: np.ndarray  # (H, W, 3) or (D, H, W) uint8
    boxes: np.ndarray  # (N, 4) or (N, 6) float64, validated
    is_3d: bool


def read_case(path: Path, max_image_bytes: int = MAX_IMAGE_BYTES) -> Case:
    """Loads and validates one case. Raises CaseError.

    Array headers are checked before any data is decompressed (see npz.py), so a pickled (object)
    array is refused without being unpickled and an oversized image without being inflated.
    """
    try:
        arrays = read_arrays(path, ("imgs", "boxes"), max_bytes=max_image_bytes)
    except NpzError as err:
        raise CaseError(str(err)) from err
    image, boxes = arrays["imgs"], arrays["boxes"]
    is_3d = is_3d_name(path.name)
    _check_image(image, is_3d)
    return Case(image, _check_boxes(boxes, image.shape, is_3d), is_3d)


def _check_image(image: np.ndarray, is_3d: bool) -> None:
    if image.dtype != np.uint8:
        raise CaseError(f"imgs must be uint8, got {image.dtype}")
    expected = "(D, H, W)" if is_3d else "(H, W, 3)"
    shape_ok = image.ndim == 3 and (is_3d or image.shape[2] == 3)
    if not shape_ok:
        raise CaseError(f"imgs must be {expected} for a {'3D' if is_3d else '2D'} case, got shape {image.shape}")
    if min(image.shape) == 0:
        raise CaseError(f"imgs is empty, shape {image.shape}")


def _check_boxes(boxes: np.ndarray, image_shape: tuple[int, ...], is_3d: bool) -> np.ndarray:
    width = 6 if is_3d else 4
    if boxes.dtype.kind not in "iuf":
        raise CaseError(f"boxes must be numeric, got {boxes.dtype}")
    if boxes.size == 0:
        return np.zeros((0, width))
    if boxes.ndim != 2 or boxes.shape[1] != width:
        raise CaseError(f"boxes must be (N, {width}), got shape {boxes.shape}")
    boxes = boxes.astype(np.float64)
    if not np.isfinite(boxes).all():
        raise CaseError("boxes hold NaN or inf")
    lo, hi = boxes[:, : width // 2], boxes[:, width // 2 :]
    sizes = (image_shape[2], image_shape[1], image_shape[0]) if is_3d else (image_shape[1], image_shape[0])
    for i in range(len(boxes)):
        if (hi[i] < lo[i]).any():
            raise CaseError(f"box {i + 1} is inverted: {boxes[i].tolist()}")
        if (hi[i] < 0).any() or (lo[i] > np.array(sizes) - 1).any():
            raise CaseError(f"box {i + 1} lies outside the image {tuple(image_shape)}: {boxes[i].tolist()}")
    return boxes


def label_dtype(largest_label: int) -> type:
    """The dtype of a label map (segs, gts, a mask holding its label): uint8 up to label 255, else uint16."""
    return np.uint8 if largest_label <= 255 else np.uint16


def write_segs(output_dir: Path, name: str, segs: np.ndarray) -> Path:
    """Writes `segs` as <output_dir>/<name>, whole or not at all (`atomic.py`)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, segs=segs)
    return write_atomically(output_dir / name, buffer.getbuffer())
