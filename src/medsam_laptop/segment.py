"""2D segmentation and 3D propagation on top of an engine (OpenVINO or PyTorch).

An engine has `encode((1, 3, 256, 256) float32) -> features` (LiteMedSAM: the (1, 256, 64, 64)
embedding) and `decode(features, boxes (B, 4) float32 in 256-space) -> logits (B, 256, 256)`. An engine
whose `prompts` is "box-points-scribble" (Swin-LiteMedSAM) also takes points (B, 4, 2) and scribbles
(B, 1, 256, 256), made here from each box and the slice (`prompts.py`), seeded by case name, box index
and, in 3D, slice.

Results equal the organizers' per-box algorithm; the work differs: every slice is encoded once and
shared by all boxes, and all boxes active on a slice are decoded in one call. Overlaps resolve as in the
organizers' code, where the later box wins, i.e. the highest label covering a pixel.
"""
from typing import Protocol

import numpy as np

from .cases import output_dtype
from .prompts import box_prompts, foreground
from .timer import StageTimer
from .transforms import box_to_model, logits_to_mask, model_input, prior_box

MAX_BOXES_PER_CALL = 16  # decoder memory grows with the batch: 16 boxes need about 0.3 GB
EMBEDDING_CACHE_BYTES = 512 << 20  # slices shared by the upward and downward sweeps: 128 LiteMedSAM ones


Features = np.ndarray | tuple[np.ndarray, ...]  # what an engine's encoder returns: one array, or several


class Engine(Protocol):
    def encode(self, image: np.ndarray) -> Features: ...

    def decode(self, features: Features, boxes: np.ndarray, *prompts: np.ndarray) -> np.ndarray: ...


def _wants_prompts(engine: Engine) -> bool:
    """Engines without a `prompts` attribute take boxes only."""
    return getattr(engine, "prompts", "box") != "box"


def _prompts(
    engine: Engine, x: np.ndarray, boxes256: np.ndarray, keys: list[str], timer: StageTimer
) -> tuple[np.ndarray, ...]:
    """The extra decoder inputs for (B, 4) boxes on model input x: () or (points, scribbles)."""
    if not _wants_prompts(engine):
        return ()
    with timer.stage("preprocess"):
        return box_prompts(foreground(x), boxes256, keys)


def _decode_masks(
    engine: Engine,
    features: Features,
    boxes256: np.ndarray,
    height: int,
    width: int,
    timer: StageTimer,
    prompts: tuple[np.ndarray, ...] = (),
    per_call: int = MAX_BOXES_PER_CALL,
) -> list[np.ndarray]:
    """Decodes (B, 4) boxes (with their (B, ...) prompts, if any) in batches; returns B bool masks (height, width)."""
    masks = []
    for start in range(0, len(boxes256), per_call):
        batch = slice(start, start + per_call)
        with timer.stage("decode"):
            logits = engine.decode(features, boxes256[batch], *(p[batch] for p in prompts))
        with timer.stage("postprocess"):
            masks.extend(logits_to_mask(lg, height, width) for lg in logits)
    return masks


def _paint(target: np.ndarray, mask: np.ndarray, label: int) -> None:
    np.maximum(target, label, out=target, where=mask)


def segment_2d(
    engine: Engine, image: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = "", per_call: int = MAX_BOXES_PER_CALL
) -> np.ndarray:
    """image (H, W, 3) uint8, boxes (N, 4) -> segs (H, W), label k for box k. `case` seeds the prompts;
    `per_call` boxes go to the decoder at once (1 is the organizers' manner)."""
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
    prompts = _prompts(engine, x, boxes256, [f"{case}:{i}" for i in range(len(boxes))], timer)
    masks = _decode_masks(engine, embedding, boxes256, height, width, timer, prompts, per_call)
    for label, mask in enumerate(masks, start=1):
        with timer.stage("postprocess"):
            _paint(segs, mask, label)
    return segs


class _SliceEmbeddings:
    """Encodes slices on demand and keeps those the downward sweep will need again (bounded in bytes).

    `get` returns the slice's features and its model input (which the box-derived prompts need)."""

    def __init__(self, engine: Engine, volume: np.ndarray, keep: set[int], timer: StageTimer) -> None:
        self.engine, self.volume, self.keep, self.timer = engine, volume, keep, timer
        self.cache: dict[int, tuple[Features, np.ndarray]] = {}
        self.cached_bytes = 0

    @staticmethod
    def _nbytes(features: Features) -> int:
        return sum(f.nbytes for f in ((features,) if isinstance(features, np.ndarray) else features))

    def get(self, z: int) -> tuple[Features, np.ndarray]:
        if z in self.cache:
            self.cached_bytes -= self._nbytes(self.cache[z][0])
            return self.cache.pop(z)
        with self.timer.stage("preprocess"):
            x = model_input(self.volume[z])
        with self.timer.stage("encode"):
            features = self.engine.encode(x)
        self.timer.count("slices_encoded")
        if z in self.keep:
            size = self._nbytes(features)
            while self.cache and self.cached_bytes + size > EMBEDDING_CACHE_BYTES:
                # the downward sweep reaches the lowest slices last
                self.cached_bytes -= self._nbytes(self.cache.pop(min(self.cache))[0])
            self.cache[z] = (features, x)
            self.cached_bytes += size
        return features, x


def _z_ranges(boxes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inclusive z_min, z_max (clipped to the volume) and the middle slice int((z_max - z_min) / 2 + z_min)."""
    z_lo = np.clip(boxes[:, 2], 0, depth - 1).astype(int)
    z_hi = np.clip(boxes[:, 5], 0, depth - 1).astype(int)
    return z_lo, z_hi, ((z_hi - z_lo) / 2 + z_lo).astype(int)


def segment_3d(engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = "") -> np.ndarray:
    """volume (D, H, W) uint8, boxes (N, 6) -> segs (D, H, W). `case` seeds the prompts.

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
            features, x = embeddings.get(z)
            extra = _prompts(engine, x, prompts[active], [f"{case}:{b}:{z}" for b in active], timer)
            masks = _decode_masks(engine, features, prompts[active], height, width, timer, extra)
            with timer.stage("postprocess"):
                for b, mask in zip(active, masks):
                    label = int(b) + 1
                    _paint(segs[z], mask, label)
                    following = prior_box(mask, label)
                    prompts[b] = start_boxes[b] if following is None else following
                    if z == z_mid[b]:
                        mid_prompts[b] = prompts[b]
    return segs


def segment_2d_per_box(engine: Engine, image: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = "") -> np.ndarray:
    """The organizers' 2D manner: one encoding, then one decoder call per box."""
    return segment_2d(engine, image, boxes, timer, case, per_call=1)


def segment_3d_per_box(
    engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = ""
) -> np.ndarray:
    """The organizers' manner, for reference and benchmarks: one box at a time into its own temporary
    volume, every slice encoded again for every box, one decoder call per slice. Same result as
    `segment_3d`, far more work. Box prompts only (a LiteMedSAM baseline); `case` is unused."""
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
