"""2D segmentation and 3D propagation on top of an engine (OpenVINO or PyTorch).

An engine has `encode((1, 3, 256, 256) float32) -> (1, 256, 64, 64)` and
`decode(embedding, boxes (B, 4) float32 in 256-space) -> logits (B, 256, 256)`.

Results equal the organizers' per-box algorithm; the work differs: every slice is encoded once and
shared by all boxes, and all boxes active on a slice are decoded in one call. Overlaps resolve as in the
organizers' code, where the later box wins, i.e. the highest label covering a pixel.
"""
from typing import Protocol

import numpy as np

from .cases import output_dtype
from .timer import StageTimer
from .transforms import box_to_model, logits_to_mask, model_input, prior_box

MAX_BOXES_PER_CALL = 16  # decoder memory grows with the batch: 16 boxes need about 0.3 GB
EMBEDDING_CACHE_SLICES = 128  # 4 MiB each: slices shared by the upward and downward sweeps


class Engine(Protocol):
    def encode(self, image: np.ndarray) -> np.ndarray: ...

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


def _decode_masks(
    engine: Engine, embedding: np.ndarray, boxes256: np.ndarray, height: int, width: int, timer: StageTimer
) -> list[np.ndarray]:
    """Decodes (B, 4) boxes in batches and returns B bool masks of shape (height, width)."""
    masks = []
    for start in range(0, len(boxes256), MAX_BOXES_PER_CALL):
        with timer.stage("decode"):
            logits = engine.decode(embedding, boxes256[start : start + MAX_BOXES_PER_CALL])
        with timer.stage("postprocess"):
            masks.extend(logits_to_mask(lg, height, width) for lg in logits)
    return masks


def _paint(target: np.ndarray, mask: np.ndarray, label: int) -> None:
    np.maximum(target, label, out=target, where=mask)


def segment_2d(engine: Engine, image: np.ndarray, boxes: np.ndarray, timer: StageTimer) -> np.ndarray:
    """image (H, W, 3) uint8, boxes (N, 4) -> segs (H, W), label k for box k."""
    height, width = image.shape[:2]
    segs = np.zeros((height, width), dtype=output_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    if len(boxes) == 0:
        return segs
    with timer.stage("preprocess"):
        x = model_input(image)
        boxes256 = box_to_model(boxes, height, width)
    with timer.stage("encode"):
        embedding = engine.encode(x)
    timer.count("slices_encoded")
    for label, mask in enumerate(_decode_masks(engine, embedding, boxes256, height, width, timer), start=1):
        with timer.stage("postprocess"):
            _paint(segs, mask, label)
    return segs


class _SliceEmbeddings:
    """Encodes slices on demand and keeps those the downward sweep will need again (bounded)."""

    def __init__(self, engine: Engine, volume: np.ndarray, keep: set[int], timer: StageTimer) -> None:
        self.engine, self.volume, self.keep, self.timer = engine, volume, keep, timer
        self.cache: dict[int, np.ndarray] = {}

    def get(self, z: int) -> np.ndarray:
        if z in self.cache:
            return self.cache.pop(z)
        with self.timer.stage("preprocess"):
            x = model_input(self.volume[z])
        with self.timer.stage("encode"):
            embedding = self.engine.encode(x)
        self.timer.count("slices_encoded")
        if z in self.keep:
            if len(self.cache) >= EMBEDDING_CACHE_SLICES:
                del self.cache[min(self.cache)]  # the downward sweep reaches the lowest slices last
            self.cache[z] = embedding
        return embedding


def _z_ranges(boxes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inclusive z_min, z_max (clipped to the volume) and the middle slice int((z_max - z_min) / 2 + z_min)."""
    z_lo = np.clip(boxes[:, 2], 0, depth - 1).astype(int)
    z_hi = np.clip(boxes[:, 5], 0, depth - 1).astype(int)
    return z_lo, z_hi, ((z_hi - z_lo) / 2 + z_lo).astype(int)


def segment_3d(engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer) -> np.ndarray:
    """volume (D, H, W) uint8, boxes (N, 6) -> segs (D, H, W).

    Each box starts on its middle slice with its own box, propagates up to z_max and then down from the
    middle to z_min (both inclusive); every further slice is prompted with the bounding box of the
    neighbouring slice's mask for that box (widened by 3 px in 256-space), or the original box when that
    mask vanished.
    """
    depth, height, width = volume.shape
    segs = np.zeros(volume.shape, dtype=output_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    if len(boxes) == 0:
        return segs
    z_lo, z_hi, z_mid = _z_ranges(boxes, depth)
    with timer.stage("preprocess"):
        start_boxes = box_to_model(boxes[:, [0, 1, 3, 4]], height, width)
    up_slices = {z for lo, hi in zip(z_mid, z_hi) for z in range(lo, hi + 1)}
    down_slices = {z for lo, hi in zip(z_lo, z_mid) for z in range(lo, hi)}
    embeddings = _SliceEmbeddings(engine, volume, up_slices & down_slices, timer)

    mid_prompts = start_boxes.copy()  # prompts for z_mid - 1, set when the upward sweep passes z_mid
    sweeps = (
        (range(min(z_mid), max(z_hi) + 1), lambda z: (z_mid <= z) & (z <= z_hi), start_boxes.copy()),
        (range(max(z_mid) - 1, min(z_lo) - 1, -1), lambda z: (z_lo <= z) & (z < z_mid), mid_prompts),
    )
    for slices, active_at, prompts in sweeps:
        for z in slices:
            active = np.flatnonzero(active_at(z))
            if len(active) == 0:
                continue
            masks = _decode_masks(engine, embeddings.get(z), prompts[active], height, width, timer)
            with timer.stage("postprocess"):
                for b, mask in zip(active, masks):
                    label = int(b) + 1
                    _paint(segs[z], mask, label)
                    following = prior_box(mask, label)
                    prompts[b] = start_boxes[b] if following is None else following
                    if z == z_mid[b]:
                        mid_prompts[b] = prompts[b]
    return segs


def segment_3d_per_box(engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer) -> np.ndarray:
    """The organizers' manner, for reference and benchmarks: one box at a time into its own temporary
    volume, every slice encoded again for every box, one decoder call per slice. Same result as
    `segment_3d`, far more work."""
    depth, height, width = volume.shape
    segs = np.zeros(volume.shape, dtype=output_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    z_lo, z_hi, z_mid = _z_ranges(boxes, depth)
    for b, box in enumerate(boxes):
        label = b + 1
        start = box_to_model(box[None, [0, 1, 3, 4]], height, width)[0]
        temp = np.zeros(volume.shape, dtype=bool)
        order = [*range(z_mid[b], z_hi[b] + 1), *range(z_mid[b] - 1, z_lo[b] - 1, -1)]
        for z in order:
            neighbour = z - 1 if z > z_mid[b] else z + 1
            prompt = None if z == z_mid[b] else prior_box(temp[neighbour], label)
            with timer.stage("preprocess"):
                x = model_input(volume[z])
            with timer.stage("encode"):
                embedding = engine.encode(x)
            timer.count("slices_encoded")
            boxes256 = (start if prompt is None else prompt)[None]
            temp[z] = _decode_masks(engine, embedding, boxes256, height, width, timer)[0]
        with timer.stage("postprocess"):
            segs[temp] = label
    return segs
