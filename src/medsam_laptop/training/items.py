"""A training item: one 2D case or one slice of a 3D volume, as given or mirrored left to right.

The datasets that read cases (`data.py`) and the feature caches (`decoder/feature_cache.py`) index their
items alike. A mirrored item is its image and labels flipped left to right before preprocessing, so the
padding stays at the right as at inference (not the original's model input mirrored).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Item:
    case: str  # file name under imgs/
    slice: int | None  # 3D: slice index; 2D: None
    flip: bool = False  # mirrored left to right


def item_plane(array: np.ndarray, item: Item, z: int | None = None) -> np.ndarray:
    """The item's plane of a case's array (imgs or gts: (H, W[, 3]) for a 2D case, (D, H, W) for a volume):
    slice `z` of a volume (default: the item's own), mirrored left to right when the item is."""
    z = item.slice if z is None else z
    plane = array if z is None else array[z]
    return np.ascontiguousarray(plane[:, ::-1]) if item.flip else plane
