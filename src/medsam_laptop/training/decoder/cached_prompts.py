"""Training items for a decoder on feature caches: one object of one cached item, prompted with the box
inference would give it.

- 2D images, and the middle slice of a 3D box: the challenge's box (`transforms.box_to_model`).
- Other 3D slices: the propagation box, i.e. `transforms.prior_box` of the neighbouring slice's mask toward
  the middle slice (label-value quirk included), or the challenge's box when that mask is empty. At inference
  that mask is the model's own prediction, so the ground-truth neighbour is first made imperfect: with
  probability `imperfect` it is dilated or eroded by up to `max_radius` pixels of 256-space.

Items may come from several caches (one per data folder, e.g. cvpr24-train and cvpr24-train-extra); case
names are unique across them. The cases are split for model selection by `split_cases`: a group with two or
more sources keeps a whole source out for validation (a new hospital), a group of one source is split by
patient. Groups are far from equal in items (a volume gives dozens of slices, a 2D case one image), while the
leaderboard weighs groups equally; `group_repeats` evens that out by repeating the items of smaller groups.
"""

import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from ...inference.segment import z_ranges
from ...inference.transforms import MODEL_SIZE, box_to_model, prior_box
from ...io.case_files import modality_group, source_name
from ...io.cases import read_case
from ...io.evaluation_guard import check_not_evaluation_set
from ...modality import modality_one_hot
from ..items import Item, item_plane
from ..targets import model_mask
from .feature_cache import CacheError, cached_items, load_features, missing_items, read_manifest


@dataclass(frozen=True)
class PropagationSampling:
    imperfect: float = 0.7  # probability that a 3D slice's neighbouring mask is dilated or eroded
    max_radius: int = 3  # largest dilation / erosion, in pixels of 256-space


def patient(case: str) -> str:
    """The case's name without its modality: 3DBox_CT_ibsi-sts_STS018.npz -> ibsi-sts_STS018.npz. The
    same patient's CT, MR and PET volumes share it."""
    return "_".join(case.split("_")[2:])


def held_out_source(members: list[str], fraction: float) -> str | None:
    """The source of a group's cases kept out for validation: of the sources but the largest, the one whose
    case count is nearest fraction x the group's; None for a group of one source."""
    sizes: dict[str, int] = {}
    for name in members:
        sizes[source_name(name)] = sizes.get(source_name(name), 0) + 1
    if len(sizes) < 2:
        return None
    largest = max(sorted(sizes), key=lambda s: sizes[s])
    target = fraction * len(members)
    return min((s for s in sorted(sizes) if s != largest), key=lambda s: abs(sizes[s] - target))


def split_cases(names: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, validation) case names. In a modality group of two or more sources, every case of the
    `held_out_source` goes to validation, so that selection rewards a model that generalises to a new source.
    In a group of one source, round(fraction x size) cases (at least one, and none of a group of one) drawn by
    `seed` go to validation. Then every other case of a patient in validation follows it, so no patient is
    on both sides. Both lists sorted."""
    chosen: set[str] = set()
    for group in sorted({modality_group(n) for n in names}):
        members = sorted(n for n in names if modality_group(n) == group)
        held = held_out_source(members, fraction)
        if held is not None:
            chosen.update(n for n in members if source_name(n) == held)
            continue
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
    item: Item, boxes: np.ndarray, gts: np.ndarray, sampling: PropagationSampling, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One object of the item, drawn by `rng`: its prompt box (4,) float32 in 256-space and its target
    (256, 256) float32, both mirrored when the item is."""
    labels = item_plane(gts, item)
    height, width = labels.shape
    if item.flip:
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
        neighbour = item_plane(gts, item, z - 1 if z > middle else z + 1) == label
        if rng.random() < sampling.imperfect:
            radius = int(rng.integers(1, sampling.max_radius + 1)) * (1 if rng.random() < 0.5 else -1)
            neighbour = perturb_mask(neighbour, radius)
        propagated = prior_box(neighbour, label)
        box = own if propagated is None else propagated
    return box, model_mask(labels == label)


@dataclass(frozen=True)
class CacheSource:
    """One feature cache and the data folder it was built from, which holds the labels."""

    cache_dir: Path
    data_dir: Path
    features: str

    @classmethod
    def open(cls, cache_dir: Path) -> "CacheSource":
        manifest = read_manifest(cache_dir)
        return cls(cache_dir, check_not_evaluation_set(Path(manifest["data_dir"]), "train"), manifest["features"])


def cached_case_names(sources: list["CacheSource"]) -> list[str]:
    """The cases the caches hold, sorted; raises CacheError when two caches hold a case of one name."""
    names: list[str] = []
    for source in sources:
        names.extend(sorted({item.case for item in cached_items(source.cache_dir)}))
    if len(set(names)) != len(names):
        twice = sorted(n for n in set(names) if names.count(n) > 1)
        raise CacheError(f"case {twice[0]} is in two feature caches")
    return sorted(names)


class CachedPromptDataset(Dataset):
    """dataset[(index, seed)] -> {"embedding": (256, 64, 64) float32 (and, from "stages" caches, "fs0" to
    "fs3", see `feature_cache.STAGE_SHAPES`), "box": (4,) float32 in 256-space, "mask": (256, 256) float32
    {0, 1}} for the cached items of `cases` in `sources` (with or without flipped copies), each group's items
    listed `group_repeats(..., balance)` times. With `modality_groups`, also "modality": the one-hot (G + 1,)
    float32 of the case's group (`modality.modality_one_hot`), replaced by the generic token with
    probability `generic_rate` (so that the generic token, which unknown names get, stays trained)."""

    def __init__(
        self,
        sources: list[CacheSource],
        cases: list[str],
        sampling: PropagationSampling,
        flips: bool = True,
        balance: float = 0.0,
        modality_groups: tuple[str, ...] | None = None,
        generic_rate: float = 0.0,
    ) -> None:
        if len({s.features for s in sources}) != 1:
            raise CacheError("the feature caches hold features of different kinds")
        self.sources, self.sampling, self.features = sources, sampling, sources[0].features
        self.modality_groups, self.generic_rate = modality_groups, generic_rate
        chosen = set(cases)
        self.items: list[tuple[int, Item]] = []
        for index, source in enumerate(sources):
            items = [i for i in cached_items(source.cache_dir) if i.case in chosen and (flips or not i.flip)]
            absent = missing_items(source.cache_dir, items, self.features)
            if absent:
                raise CacheError(
                    f"{source.cache_dir} lacks {len(absent)} items (e.g. {absent[0]}); run cache-features again"
                )
            self.items.extend((index, item) for item in items)
        if not self.items:
            raise CacheError(f"the feature caches hold no item of the {len(chosen)} cases asked for")
        repeats = group_repeats([modality_group(i.case) for _, i in self.items], balance)
        self.items = [entry for entry in self.items for _ in range(repeats[modality_group(entry[1].case)])]

    def __len__(self) -> int:
        return len(self.items)

    def group(self, index: int) -> str:
        return modality_group(self.items[index][1].case)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        index, seed = key
        source_index, item = self.items[index]
        source = self.sources[source_index]
        boxes, gts = case_labels(source.data_dir, item.case)
        rng = np.random.default_rng(seed)
        box, mask = item_prompt(item, boxes, gts, self.sampling, rng)
        result = load_features(source.cache_dir, item, self.features) | {"box": box, "mask": mask}
        if self.modality_groups is not None:
            generic = rng.random() < self.generic_rate
            result["modality"] = modality_one_hot("" if generic else item.case, self.modality_groups)[0]
        return result
