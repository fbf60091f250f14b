"""DSC and NSD as the challenge organizers compute them (compute_metrics.py + SurfaceDice.py).

Pure numpy/scipy. The expensive intermediate (surface distances, a dict of named arrays) is
computed once per class and fed to the cheap ``surface_dice``. ``case_scores`` is the organizers'
per-case, per-class loop; every quirk it has is the default, and ``MetricOptions`` names the
corrections (see evaluation/README.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from .lookup_tables import NEIGHBOUR_WEIGHTS_2D, NEIGHBOUR_WEIGHTS_3D, contour_length_table, surface_area_table

SurfaceDistances = dict[str, np.ndarray]


def _check_mask(name: str, mask: np.ndarray) -> None:
    """Refuses anything but a bool numpy array: a label map would be silently misread (labels
    2 and 3 intersect as 2 & 3 = 2, and overflow the uint8 neighbour codes).

    Raises:
        TypeError: naming the argument ``name``.
    """
    if not isinstance(mask, np.ndarray) or mask.dtype != bool:
        got = f"{mask.dtype} array" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{name} must be a bool numpy array, got {got} (pass e.g. labels == k)")


def dice(mask_gt: np.ndarray, mask_pred: np.ndarray) -> float:
    """Dice similarity coefficient 2|A n B| / (|A| + |B|) of two boolean masks of one shape.

    Returns NaN when both masks are empty (the organizers' convention).

    Raises:
        TypeError: a mask that is not bool; ValueError: masks of different shapes.
    """
    _check_mask("mask_gt", mask_gt)
    _check_mask("mask_pred", mask_pred)
    if mask_gt.shape != mask_pred.shape:
        raise ValueError(f"mask shapes differ: {mask_gt.shape} vs {mask_pred.shape}")
    volume_sum = mask_gt.sum() + mask_pred.sum()
    if volume_sum == 0:
        return float("nan")
    return float(2 * (mask_gt & mask_pred).sum() / volume_sum)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of the True voxels of the bool array ``mask`` as slices, or None if it is empty."""
    _check_mask("mask", mask)
    box = []
    for axis in range(mask.ndim):
        other_axes = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other_axes))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Neighbour code of every corner of the voxel grid.

    Args:
        mask: (n0, n1) or (n0, n1, n2) bool.

    Returns:
        uint8 array one larger along each axis: entry i holds the code (lookup_tables weights) of
        the 2x2(x2) voxels i-1..i around corner i, voxels outside ``mask`` counting as empty.
    """
    _check_mask("mask", mask)
    weights = NEIGHBOUR_WEIGHTS_3D if mask.ndim == 3 else NEIGHBOUR_WEIGHTS_2D
    padded = np.pad(mask.astype(np.uint8), 1)
    codes = np.zeros(tuple(n + 1 for n in mask.shape), np.uint8)
    for offset in np.ndindex(weights.shape):
        window = tuple(slice(o, o + n) for o, n in zip(offset, codes.shape))
        codes += padded[window] * weights[offset]
    return codes


def surface_distances(
    mask_gt: np.ndarray, mask_pred: np.ndarray, spacing_mm: Sequence[float], crop: bool = True
) -> SurfaceDistances:
    """Distance from every surfel of each mask to the other mask's surface.

    Args:
        mask_gt, mask_pred: bool arrays of one shape, 2D (contours) or 3D (surfaces).
        spacing_mm: voxel size along each array axis, in mm.
        crop: work on the bounding box of both masks (plus one corner layer). The distances do
            not change, only the time; ``crop=False`` exists to measure that.

    Returns:
        A dict of 1-D float64 arrays. ``distances_gt_to_pred`` (mm, sorted ascending, ``inf``
        where ``mask_pred`` is empty) with ``surfel_areas_gt`` (mm^2 in 3D, mm in 2D) in the same
        order; ``distances_pred_to_gt`` with ``surfel_areas_pred`` likewise. All four are empty
        when both masks are empty.

    Raises:
        TypeError: a mask that is not bool; ValueError: masks of different shapes or of 1 or 4+ dims.
    """
    _check_mask("mask_gt", mask_gt)
    _check_mask("mask_pred", mask_pred)
    if mask_gt.shape != mask_pred.shape:
        raise ValueError(f"mask shapes differ: {mask_gt.shape} vs {mask_pred.shape}")
    if mask_gt.ndim == 3:
        area_of_code, full_code = surface_area_table(tuple(spacing_mm)), 255
    elif mask_gt.ndim == 2:
        area_of_code, full_code = contour_length_table(tuple(spacing_mm)), 15
    else:
        raise ValueError(f"masks must be 2D or 3D, got {mask_gt.ndim}D")
    box = bounding_box(mask_gt | mask_pred)
    if box is None:
        empty = np.zeros(0)
        return {
            "distances_gt_to_pred": empty,
            "distances_pred_to_gt": empty,
            "surfel_areas_gt": empty,
            "surfel_areas_pred": empty,
        }
    if crop:
        mask_gt, mask_pred = mask_gt[box], mask_pred[box]

    codes_gt, codes_pred = neighbour_codes(mask_gt), neighbour_codes(mask_pred)
    border_gt = (codes_gt != 0) & (codes_gt != full_code)
    border_pred = (codes_pred != 0) & (codes_pred != full_code)
    distmap_gt = _distance_to(border_gt, spacing_mm)
    distmap_pred = _distance_to(border_pred, spacing_mm)

    gt_to_pred, areas_gt = _sorted_by_distance(distmap_pred[border_gt], area_of_code[codes_gt[border_gt]])
    pred_to_gt, areas_pred = _sorted_by_distance(distmap_gt[border_pred], area_of_code[codes_pred[border_pred]])
    return {
        "distances_gt_to_pred": gt_to_pred,
        "distances_pred_to_gt": pred_to_gt,
        "surfel_areas_gt": areas_gt,
        "surfel_areas_pred": areas_pred,
    }


def _distance_to(border: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """Euclidean distance (mm) from every grid corner to the nearest True corner of ``border``."""
    if not border.any():
        return np.full(border.shape, np.inf)
    return ndimage.distance_transform_edt(~border, sampling=spacing_mm)


def _sorted_by_distance(distances: np.ndarray, areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Sorted by (distance, area) like the organizers' code: the summation order in surface_dice
    # is then the same, and so is every bit of the result.
    order = np.lexsort((areas, distances))
    return distances[order], areas[order]


def surface_dice(distances: SurfaceDistances, tolerance_mm: float) -> float:
    """Normalised surface Dice: the share of both surfaces within ``tolerance_mm`` of the other.

    Args:
        distances: the dict of ``surface_distances``.
        tolerance_mm: tolerance in mm (the challenge uses 2.0).

    Returns:
        A value in [0, 1]; 0 when both surfaces are empty (the 1e-12 in the denominator, as the
        organizers wrote it).
    """
    areas_gt, areas_pred = distances["surfel_areas_gt"], distances["surfel_areas_pred"]
    overlap_gt = np.sum(areas_gt[distances["distances_gt_to_pred"] <= tolerance_mm])
    overlap_pred = np.sum(areas_pred[distances["distances_pred_to_gt"] <= tolerance_mm])
    return float((overlap_gt + overlap_pred) / (np.sum(areas_gt) + np.sum(areas_pred) + 1e-12))


@dataclass(frozen=True)
class MetricOptions:
    """How a case is scored. The defaults are the organizers' behaviour, quirks included.

    Attributes:
        tolerance_mm: NSD tolerance.
        nsd_min_dsc: NSD is computed only when the case DSC is above this (else, or when the DSC
            is NaN, the case NSD is 0). None computes NSD always.
        spacing: "as-stored" passes the 3D ``spacing`` (stored in (x, y, z) order) unchanged as
            the spacing of array axes (0, 1, 2), which are (z, y, x); "zyx" reverses it first.
        nsd_2d: "volume" scores 2D masks as (H, W, 1) volumes with spacing (1, 1, 1), where every
            voxel is surface; "contour" scores the 2D contours (marching squares), spacing (1, 1).
        absent_classes: "nan" scores a class absent from both gts and segs as NaN DSC, which
            makes the case NaN; "skip" leaves such classes out of both means.
        decimals: per-case rounding before any averaging (np.round); None keeps full precision.
        crop: compute surface distances on the masks' bounding box (same result, faster).
    """

    tolerance_mm: float = 2.0
    nsd_min_dsc: float | None = 0.2
    spacing: Literal["as-stored", "zyx"] = "as-stored"
    nsd_2d: Literal["volume", "contour"] = "volume"
    absent_classes: Literal["nan", "skip"] = "nan"
    decimals: int | None = 4
    crop: bool = True


def case_scores(
    gts: np.ndarray, segs: np.ndarray, spacing: Sequence[float] | None, options: MetricOptions = MetricOptions()
) -> tuple[float, float]:
    """The organizers' per-case scores: mean over classes k = 1..gts.max() of DSC and of NSD.

    Args:
        gts: (H, W) or (D, H, W) integer label map, 0 = background.
        segs: integer label map of the same shape; labels above gts.max() are ignored.
        spacing: for 3D, the file's ``spacing`` as stored ((x, y, z) order, mm); None for 2D.
        options: quirks and their corrections.

    Returns:
        (dsc, nsd) rounded to ``options.decimals``; dsc may be NaN (see ``MetricOptions``).
    """
    if gts.shape != segs.shape:
        raise ValueError(f"segs shape {segs.shape} differs from gts shape {gts.shape}")
    # Python int: the organizers' `gts.max() + 1` overflows for uint8 label 255 under numpy >= 2.
    labels = range(1, int(gts.max()) + 1)
    per_class_dsc = [dice(gts == k, segs == k) for k in labels]
    if options.absent_classes == "skip":
        labels = [k for k, d in zip(labels, per_class_dsc) if not np.isnan(d)]
        per_class_dsc = [d for d in per_class_dsc if not np.isnan(d)]
    dsc = float(np.mean(per_class_dsc)) if per_class_dsc else float("nan")

    if options.nsd_min_dsc is not None and not dsc > options.nsd_min_dsc:
        nsd = 0.0
    else:
        masks_shape, nsd_spacing = _nsd_geometry(gts, spacing, options)
        per_class_nsd = []
        for k in labels:
            distances = surface_distances(
                (gts == k).reshape(masks_shape), (segs == k).reshape(masks_shape), nsd_spacing, crop=options.crop
            )
            per_class_nsd.append(surface_dice(distances, options.tolerance_mm))
        nsd = float(np.mean(per_class_nsd)) if per_class_nsd else 0.0
    return round_score(dsc, options.decimals), round_score(nsd, options.decimals)


def _nsd_geometry(
    gts: np.ndarray, spacing: Sequence[float] | None, options: MetricOptions
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Shape the masks are scored in and the spacing of its axes."""
    if gts.ndim == 2:
        if options.nsd_2d == "contour":
            return gts.shape, (1.0, 1.0)
        return (*gts.shape, 1), (1.0, 1.0, 1.0)
    if spacing is None or len(spacing) != 3:
        raise ValueError("a 3D case needs a 3-element spacing")
    stored = tuple(float(s) for s in spacing)
    return gts.shape, stored[::-1] if options.spacing == "zyx" else stored


def round_score(value: float, decimals: int | None) -> float:
    """np.round as the organizers round (not Python's round, which can differ in the last digit)."""
    return value if decimals is None else float(np.round(value, decimals))
