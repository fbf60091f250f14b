"""Training items for a decoder on the feature cache: one object of one cached item, prompted with the box
inference would give it.

- 2D images, and the middle slice of a 3D box: the challenge's box (`transforms.box_to_model`).
- Other 3D slices: the propagation box, i.e. `transforms.prior_box` of the neighbouring slice's mask toward
  the middle slice (label-value quirk included), or the challenge's box when that mask is empty. At inference
  that mask is the model's own prediction, so the ground-truth neighbour is first made imperfect: with
  probability `imperfect` it is dilated or eroded by up to `max_radius` pixels of 256-space.

The cases are split for model selection by `split_cases`: by patient, stratified by modality group.
Groups are far from equal in items (a volume gives dozens of slices, a 2D case one image), while the
leaderboard weighs groups equally; `group_repeats` evens that out in part by repeating the items of
smaller groups.
"""

import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from ..cases import read_case
from ..evaluation_guard import check_not_evaluation_set
from ..segment import z_ranges
from ..transforms import MODEL_SIZE, box_to_model, prior_box
from .feature_cache import CacheError, CacheItem, cached_items, load_features, missing_items, read_manifest
from .targets import model_mask


@dataclass(frozen=True)
class PropagationSampling:
    imperfect: float = 0.7  # probability that a 3D slice's neighbouring mask is dilated or eroded
    max_radius: int = 3  # largest dilation / erosion, in pixels of 256-space


def modality_group(case: str) -> str:
    """The leaderboard's group of a case: 3DBox_CT_ibsi-sts_STS018.npz -> 3DBox_CT."""
    return "_".join(case.split("_")[:2])


def patient(case: str) -> str:
    """The case's name without its modality: 3DBox_CT_ibsi-sts_STS018.npz -> ibsi-sts_STS018.npz. The
    same patient's CT, MR and PET volumes share it."""
    return "_".join(case.split("_")[2:])


def split_cases(names: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, validation) case names. In every modality group, round(fraction x size) cases (at least
    one, and none of a group of one) drawn by `seed` go to validation; then every other case of a patient in
    validation follows it, so no patient is on both sides. Both lists sorted."""
    chosen: set[str] = set()
    for group in sorted({modality_group(n) for n in names}):
        members = sorted(n for n in names if modality_group(n) == group)
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        order = np.random.default_rng([seed, zlib.crc32(group.encode())]).permutation(len(members))
        chosen.update(members[i] for i in order[:count])
    patients = {patient(n) for n in chosen}
    validation = sorted(n for n in names if patient(n) in patients)
    return sorted(set(names) - set(validation)), validation


def group_repeats(groups: list[str], balance: float) -> dict[str, int]:
    """How many times each group's items are listed so that a group of n items counts about
    n x (largest / n) ** balance: 0 keeps the item counts, 1 makes the groups about equal."""
    sizes = {g: groups.count(g) for g in set(groups)}
    largest = max(sizes.values())
    return {g: max(1, round((largest / n) ** balance)) for g, n in sizes.items()}


@cache
def case_labels(data_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The case's boxes ((N, 4) or (N, 6)) and label map gts ((H, W) or (D, H, W)); label k + 1 is box k."""
    boxes = read_case(data_dir / "imgs" / name).boxes
    with np.load(data_dir / "gts" / name, allow_pickle=False) as gts:
        return boxes, gts["gts"]


def perturb_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool dilated (radius > 0) or eroded (radius < 0) by |radius| pixels of 256-space."""
    if radius == 0:
        return mask
    r = max(1, round(abs(radius) * max(mask.shape) / MODEL_SIZE))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    operation = cv2.dilate if radius > 0 else cv2.erode
    return operation(mask.astype(np.uint8), kernel).astype(bool)


def item_prompt(
    item: CacheItem, boxes: np.ndarray, gts: np.ndarray, sampling: PropagationSampling, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One object of the item, drawn by `rng`: its prompt box (4,) float32 in 256-space and its target
    (256, 256) float32, both mirrored when the item is."""
    labels = gts if item.slice is None else gts[item.slice]
    height, width = labels.shape
    if item.flip:
        labels = labels[:, ::-1]
        boxes = boxes.copy()
        x_columns = [0, 2] if boxes.shape[1] == 4 else [0, 3]
        boxes[:, x_columns] = width - 1 - boxes[:, x_columns[::-1]]
    if item.slice is None:
        k = int(rng.integers(len(boxes)))
        return box_to_model(boxes[k][None], height, width)[0], model_mask(labels == k + 1)
    z = item.slice
    z_lo, z_hi, z_mid = z_ranges(boxes, gts.shape[0])
    k = int(rng.choice(np.flatnonzero((z_lo <= z) & (z <= z_hi))))
    label, own, middle = k + 1, box_to_model(boxes[k][None, [0, 1, 3, 4]], height, width)[0], int(z_mid[k])
    box = own
    if z != middle:
        neighbour = gts[z - 1 if z > middle else z + 1] == label
        if item.flip:
            neighbour = neighbour[:, ::-1]
        if rng.random() < sampling.imperfect:
            radius = int(rng.integers(1, sampling.max_radius + 1)) * (1 if rng.random() < 0.5 else -1)
            neighbour = perturb_mask(neighbour, radius)
        propagated = prior_box(neighbour, label)
        box = own if propagated is None else propagated
    return box, model_mask(labels == label)


class CachedPromptDataset(Dataset):
    """dataset[(index, seed)] -> {"embedding": (256, 64, 64) float32 (and, from a "stages" cache, "fs0" to
    "fs3", see `feature_cache.STAGE_SHAPES`), "box": (4,) float32 in 256-space, "mask": (256, 256) float32
    {0, 1}} for the cached items of `cases` (with or without flipped copies),
    each group's items listed `group_repeats(..., balance)` times. Labels come from the folder the cache
    was built from."""

    def __init__(
        self, cache_dir: Path, cases: list[str], sampling: PropagationSampling, flips: bool = True, balance: float = 0.0
    ) -> None:
        self.cache_dir, self.sampling = cache_dir, sampling
        manifest = read_manifest(cache_dir)
        self.data_dir = check_not_evaluation_set(Path(manifest["data_dir"]), "train")
        self.features = manifest["features"]
        chosen = set(cases)
        items = [i for i in cached_items(cache_dir) if i.case in chosen and (flips or not i.flip)]
        absent = missing_items(cache_dir, items, self.features)
        if absent:
            raise CacheError(f"{cache_dir} lacks {len(absent)} items (e.g. {absent[0]}); run cache-features again")
        if not items:
            raise CacheError(f"{cache_dir} holds no item of the {len(chosen)} cases asked for")
        repeats = group_repeats([modality_group(i.case) for i in items], balance)
        self.items = [i for i in items for _ in range(repeats[modality_group(i.case)])]

    def __len__(self) -> int:
        return len(self.items)

    def group(self, index: int) -> str:
        return modality_group(self.items[index].case)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        index, seed = key
        item = self.items[index]
        boxes, gts = case_labels(self.data_dir, item.case)
        box, mask = item_prompt(item, boxes, gts, self.sampling, np.random.default_rng(seed))
        return load_features(self.cache_dir, item, self.features) | {"box": box, "mask": mask}
