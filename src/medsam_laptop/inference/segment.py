"""2D segmentation and 3D propagation on top of an engine (`contract.Engine`: OpenVINO or PyTorch).

Words used here:
- prompt mode: the engine's `prompt_mode`, "box" or "box-points-scribble";
- box cues: the points (B, 4, 2) and scribbles (B, 1, 256, 256) that "box-points-scribble" engines take
  besides each box, made here from the box and the slice (`prompts.py`), seeded by case name, box index
  and, in 3D, slice;
- prompt boxes: the (B, 4) boxes in 256-space given to the decoder; in 3D each box's prompt box for the
  next slice is the bounding box of its mask on the previous one.

Results equal the organizers' per-box algorithm; the work differs: every slice is encoded once and
shared by all boxes, and all boxes active on a slice are decoded in one call. Overlaps resolve as in the
organizers' code, where the later box wins, i.e. the highest label covering a pixel.
"""

import numpy as np

from ..engines.contract import BOX_ONLY, Engine, Features, feature_arrays
from ..io.cases import label_dtype
from .prompts import box_prompts, foreground
from .timer import StageTimer
from .transforms import box_to_model, logits_to_mask, model_input, prior_box

MAX_BOXES_PER_CALL = 16  # decoder memory grows with the batch: 16 boxes need about 0.3 GB
EMBEDDING_CACHE_BYTES = 512 << 20  # slices shared by the upward and downward sweeps: 128 LiteMedSAM ones

BoxCues = tuple[np.ndarray, np.ndarray] | None  # (points, scribbles), or None for box-only engines


def _box_cues(engine: Engine, x: np.ndarray, boxes256: np.ndarray, keys: list[str], timer: StageTimer) -> BoxCues:
    """The box cues for (B, 4) prompt boxes on model input x, when the engine takes them."""
    if engine.prompt_mode == BOX_ONLY:
        return None
    with timer.stage("preprocess"):
        return box_prompts(foreground(x), boxes256, keys)


def _decode_masks(
    engine: Engine,
    features: Features,
    boxes256: np.ndarray,
    height: int,
    width: int,
    timer: StageTimer,
    cues: BoxCues = None,
    per_call: int = MAX_BOXES_PER_CALL,
) -> list[np.ndarray]:
    """Decodes (B, 4) prompt boxes (with their cues, if any) in batches; returns B bool masks (height, width)."""
    masks = []
    for start in range(0, len(boxes256), per_call):
        batch = slice(start, start + per_call)
        cue_batch = {} if cues is None else {"points": cues[0][batch], "scribbles": cues[1][batch]}
        with timer.stage("decode"):
            logits = engine.decode(features, boxes256[batch], **cue_batch)
        with timer.stage("postprocess"):
            masks.extend(logits_to_mask(lg, height, width) for lg in logits)
    return masks


def _paint(target: np.ndarray, mask: np.ndarray, label: int) -> None:
    np.maximum(target, label, out=target, where=mask)


def segment_2d(
    engine: Engine,
    image: np.ndarray,
    boxes: np.ndarray,
    timer: StageTimer,
    case: str = "",
    per_call: int = MAX_BOXES_PER_CALL,
) -> np.ndarray:
    """image (H, W, 3) uint8, boxes (N, 4) -> segs (H, W), label k for box k. `case` seeds the box cues;
    `per_call` boxes go to the decoder at once (1 is the organizers' manner)."""
    height, width = image.shape[:2]
    segs = np.zeros((height, width), dtype=label_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    if len(boxes) == 0:
        return segs
    with timer.stage("preprocess"):
        x = model_input(image)
        boxes256 = box_to_model(boxes, height, width)
    with timer.stage("encode"):
        embedding = engine.encode(x)
    timer.count("slices_encoded")
    cues = _box_cues(engine, x, boxes256, [f"{case}:{i}" for i in range(len(boxes))], timer)
    masks = _decode_masks(engine, embedding, boxes256, height, width, timer, cues, per_call)
    for label, mask in enumerate(masks, start=1):
        with timer.stage("postprocess"):
            _paint(segs, mask, label)
    return segs


class _SliceEmbeddings:
    """Encodes slices on demand and keeps those the downward sweep will need again (bounded in bytes).

    `get` returns the slice's features and its model input (which the box cues need)."""

    def __init__(self, engine: Engine, volume: np.ndarray, keep: set[int], timer: StageTimer) -> None:
        self.engine, self.volume, self.keep, self.timer = engine, volume, keep, timer
        self.cache: dict[int, tuple[Features, np.ndarray]] = {}
        self.cached_bytes = 0

    @staticmethod
    def _nbytes(features: Features) -> int:
        return sum(f.nbytes for f in feature_arrays(features))

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


def z_ranges(boxes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inclusive z_min, z_max (clipped to the volume) and the middle slice int((z_max - z_min) / 2 + z_min)."""
    z_lo = np.clip(boxes[:, 2], 0, depth - 1).astype(int)
    z_hi = np.clip(boxes[:, 5], 0, depth - 1).astype(int)
    return z_lo, z_hi, ((z_hi - z_lo) / 2 + z_lo).astype(int)


def segment_3d(engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = "") -> np.ndarray:
    """volume (D, H, W) uint8, boxes (N, 6) -> segs (D, H, W). `case` seeds the box cues.

    Each box starts on its middle slice with its own box and propagates up to z_max; then it starts again
    from its middle slice's mask and propagates down to z_min (both inclusive). Every further slice is
    prompted with the bounding box of the neighbouring slice's mask for that box (widened by 3 px in
    256-space), or the box's own box when that mask vanished. All boxes sweep together, slice by slice.
    """
    depth, height, width = volume.shape
    segs = np.zeros(volume.shape, dtype=label_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    if len(boxes) == 0:
        return segs
    z_lo, z_hi, z_mid = z_ranges(boxes, depth)
    with timer.stage("preprocess"):
        own_boxes = box_to_model(boxes[:, [0, 1, 3, 4]], height, width)
    up_slices = {z for mid, hi in zip(z_mid, z_hi) for z in range(mid, hi + 1)}
    down_slices = {z for lo, mid in zip(z_lo, z_mid) for z in range(lo, mid)}
    embeddings = _SliceEmbeddings(engine, volume, up_slices & down_slices, timer)

    def segment_slice(z: int, active: np.ndarray, prompt_boxes: np.ndarray) -> None:
        """Segments slice z for the active boxes, paints their masks, and replaces each one's prompt box
        by the box of its new mask (its own box when the mask is empty)."""
        features, x = embeddings.get(z)
        cues = _box_cues(engine, x, prompt_boxes[active], [f"{case}:{b}:{z}" for b in active], timer)
        masks = _decode_masks(engine, features, prompt_boxes[active], height, width, timer, cues)
        with timer.stage("postprocess"):
            for b, mask in zip(active, masks):
                label = int(b) + 1
                _paint(segs[z], mask, label)
                following = prior_box(mask, label)
                prompt_boxes[b] = own_boxes[b] if following is None else following

    up_boxes = own_boxes.copy()
    middle_boxes = own_boxes.copy()  # each box's prompt below its middle slice: from the middle slice's mask
    for z in range(min(z_mid), max(z_hi) + 1):
        active = np.flatnonzero((z_mid <= z) & (z <= z_hi))
        if len(active):
            segment_slice(z, active, up_boxes)
            at_middle = active[z_mid[active] == z]
            middle_boxes[at_middle] = up_boxes[at_middle]

    down_boxes = middle_boxes
    for z in range(max(z_mid) - 1, min(z_lo) - 1, -1):
        active = np.flatnonzero((z_lo <= z) & (z < z_mid))
        if len(active):
            segment_slice(z, active, down_boxes)
    return segs


def segment_2d_per_box(
    engine: Engine, image: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = ""
) -> np.ndarray:
    """The organizers' 2D manner: one encoding, then one decoder call per box."""
    return segment_2d(engine, image, boxes, timer, case, per_call=1)


def segment_3d_per_box(
    engine: Engine, volume: np.ndarray, boxes: np.ndarray, timer: StageTimer, case: str = ""
) -> np.ndarray:
    """The organizers' manner, for reference and benchmarks: one box at a time into its own temporary
    volume, every slice encoded again for every box, one decoder call per slice. Same result as
    `segment_3d`, far more work. Box prompts only (a LiteMedSAM baseline); `case` is unused."""
    depth, height, width = volume.shape
    segs = np.zeros(volume.shape, dtype=label_dtype(len(boxes)))
    timer.count("boxes", len(boxes))
    z_lo, z_hi, z_mid = z_ranges(boxes, depth)
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
