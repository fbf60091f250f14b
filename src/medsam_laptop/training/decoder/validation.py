"""Model selection as the pipeline is scored: each validation case segmented whole, with the pipeline's own
`segment_2d` / `segment_3d` (a 3D box propagated over its volume, each slice prompted from the previous
prediction), and scored with the organizers' DSC (mean over the case's labels). Only the encoder is not run:
its outputs are read from the feature cache, which holds every slice the propagation visits.

Scores: the mean DSC of each modality group's cases, and "mean": the mean of the groups, as the
leaderboard weighs them.
"""

import hashlib
from collections.abc import Callable

import numpy as np
import torch

from evaluation.metrics import dice

from ...engines.contract import BOX_ONLY, Features, feature_arrays
from ...inference.segment import segment_2d, segment_3d
from ...inference.timer import StageTimer
from ...inference.transforms import model_input
from ...io.case_files import is_3d_name, modality_group
from ...io.cases import read_case
from ...modality import modality_one_hot
from .cached_prompts import CacheSource, case_labels
from .feature_cache import FEATURE_SHAPES, cached_items, item_image, load_features

DecodeBatch = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]  # -> logits, iou


def _digest(x: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest()


class CachedEncoderEngine:
    """A `contract.Engine` for one case of a feature cache: `encode` returns the cached features of the slice
    (or 2D image) whose model input it is given, float32 with a batch axis of 1 (a tuple in the order of
    `feature_cache.FEATURE_SHAPES` for a "stages" cache); `decode` runs `decode_batch` (a torch decoder on a
    batch {feature name: tensor, "box": (B, 4), and for a modality-aware model "modality": (1, G + 1)})."""

    prompt_mode = BOX_ONLY

    def __init__(
        self, source: CacheSource, case: str, image: np.ndarray, decode_batch: DecodeBatch, modality: bool
    ) -> None:
        self.source, self.decode_batch = source, decode_batch
        self.modality = modality_one_hot(case) if modality else None
        items = [i for i in cached_items(source.cache_dir) if i.case == case and not i.flip]
        self.by_input = {_digest(model_input(item_image(source.data_dir, i, image))): i for i in items}

    def for_case(self, case: str) -> "CachedEncoderEngine":
        return self

    def encode(self, image: np.ndarray) -> Features:
        item = self.by_input[_digest(image)]
        features = load_features(self.source.cache_dir, item, self.source.features)
        arrays = tuple(features[name][None] for name in FEATURE_SHAPES[self.source.features])
        return arrays[0] if len(arrays) == 1 else arrays

    @torch.no_grad()
    def decode(self, features: Features, boxes: np.ndarray, points=None, scribbles=None) -> np.ndarray:
        names = FEATURE_SHAPES[self.source.features]
        batch = {name: torch.from_numpy(a) for name, a in zip(names, feature_arrays(features))}
        batch["box"] = torch.from_numpy(boxes)
        if self.modality is not None:
            batch["modality"] = torch.from_numpy(self.modality)
        logits, _ = self.decode_batch(batch)
        return logits[:, 0].numpy()


def case_dice(gts: np.ndarray, segs: np.ndarray) -> float:
    """The organizers' per-case DSC: the mean over labels 1..gts.max() (a label absent from both is left out)."""
    values = [dice(gts == k, segs == k) for k in range(1, int(gts.max()) + 1)]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def segment_cached_case(
    source: CacheSource, case: str, decode_batch: DecodeBatch, modality: bool = False
) -> np.ndarray:
    """The case's segs, by the pipeline's 2D segmentation or 3D propagation on the cached encoder outputs."""
    read = read_case(source.data_dir / "imgs" / case)
    engine = CachedEncoderEngine(source, case, read.image, decode_batch, modality)
    segment = segment_3d if is_3d_name(case) else segment_2d
    return segment(engine, read.image, read.boxes, StageTimer(), case=case)


def volume_scores(
    sources: list[CacheSource], cases: list[str], decode_batch: DecodeBatch, modality: bool
) -> dict[str, float]:
    """Mean DSC per modality group over the whole-case segmentations of `cases`, and "mean" over the groups."""
    source_of = {item.case: s for s in sources for item in cached_items(s.cache_dir)}
    per_group: dict[str, list[float]] = {}
    for case in cases:
        source = source_of[case]
        segs = segment_cached_case(source, case, decode_batch, modality)
        _, gts = case_labels(source.data_dir, case)
        per_group.setdefault(modality_group(case), []).append(case_dice(gts, segs))
    scores = {group: float(np.nanmean(values)) for group, values in sorted(per_group.items())}
    return scores | {"mean": float(np.mean(list(scores.values())))}
