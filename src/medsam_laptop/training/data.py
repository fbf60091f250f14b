"""The training set as (case, slice) items: every 2D case once, every slice of every 3D volume, and with
`flips` a mirrored copy of each after them (image and labels mirrored left to right before preprocessing,
so the padding stays at the right as at inference: not the original's model input mirrored).

Cases are DATA/imgs/*.npz (read with `cases.read_case`), ground truth DATA/gts/<same name> where present.
A 3D slice (H, W) is replicated to three channels by `transforms.model_input`, as at inference.
Items are fetched as dataset[(index, seed)]: all randomness of an item (augmentation, object, box,
prompts) comes from `seed`, so a batch is the same in any worker and after a resume.
"""

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..inference.prompts import box_prompts, foreground
from ..inference.transforms import model_input
from ..io.case_files import is_3d_name
from ..io.cases import MAX_IMAGE_BYTES, read_case
from ..io.evaluation_guard import check_not_evaluation_set
from ..io.npz import read_headers
from .augment import Augmentation, augment
from .items import Item, item_plane
from .targets import model_mask, object_box, random_box

CASE_CACHE = 64  # decoded cases kept per process (a 3D volume serves all its slices)


def volume_depth(path: Path) -> int:
    """Number of slices of a 3D case's `imgs` (D, H, W), from the array header (no decompression)."""
    return read_headers(path, ["imgs"], max_bytes=MAX_IMAGE_BYTES)["imgs"].shape[0]


def index_items(data_dir: Path, flips: bool = False) -> list[Item]:
    """Items of DATA/imgs/*.npz in file-name order, each 3D case's slices in order; with `flips`, the
    mirrored copies follow in the same order."""
    items = []
    for path in sorted((data_dir / "imgs").glob("*.npz")):
        if is_3d_name(path.name):
            items.extend(Item(path.name, z) for z in range(volume_depth(path)))
        else:
            items.append(Item(path.name, None))
    return items + [replace(item, flip=True) for item in items] if flips else items


@lru_cache(maxsize=CASE_CACHE)
def load_case(data_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """imgs ((H, W, 3) or (D, H, W) uint8) and gts (same shape without channels, or None when absent)."""
    image = read_case(data_dir / "imgs" / name).image
    gt_path = data_dir / "gts" / name
    if not gt_path.is_file():
        return image, None
    with np.load(gt_path, allow_pickle=False) as gts:
        return image, gts["gts"]


class SliceDataset(Dataset):
    """Base: the item list and the augmented uint8 image (H, W, 3) or (H, W) and label map (H, W) of an item."""

    def __init__(self, data_dir: Path, augmentation: Augmentation, flips: bool = False) -> None:
        self.data_dir = check_not_evaluation_set(Path(data_dir), "train")
        self.items = index_items(self.data_dir, flips)
        if not self.items:
            raise FileNotFoundError(f"no cases under {self.data_dir / 'imgs'}")
        self.augmentation = augmentation
        self.held: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def hold_in_memory(self) -> None:
        """Decodes every case once and keeps it, past `load_case`'s cache (forked DataLoader workers share it)."""
        for name in dict.fromkeys(item.case for item in self.items):
            self.held[name] = load_case.__wrapped__(self.data_dir, name)

    def slice_of(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        item = self.items[index]
        image, labels = self.held[item.case] if item.case in self.held else load_case(self.data_dir, item.case)
        image, labels = item_plane(image, item), None if labels is None else item_plane(labels, item)
        return augment(image, labels, self.augmentation, rng)


class DistillDataset(SliceDataset):
    """dataset[(index, seed)] -> {"image": (3, 256, 256) float32 model input}."""

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        index, seed = key
        image, _ = self.slice_of(index, np.random.default_rng(seed))
        return {"image": model_input(image)[0]}


@dataclass(frozen=True)
class PromptSampling:
    """How finetune items draw their prompts (see targets.py)."""

    with_prompts: float = 0.5  # probability of box + points + scribble (else the box alone)
    prior_box: float = 0.5  # 3D slices: probability of the propagation box instead of the tight box
    random_box_size: tuple[float, float] = (0.1, 0.6)  # unlabelled slices: box side / image side


class PromptDataset(SliceDataset):
    """dataset[(index, seed)] -> one object (or one random box) of the item:

    image (3, 256, 256) float32; box (4,) float32 in 256-space; points (4, 2) float32; scribble
    (1, 256, 256) float32 (zeros when with_prompts is False); with_prompts bool; mask (256, 256)
    float32 target (zeros when labelled is False: the teacher fills it in); labelled bool; index int
    (the item's, for looking up what was computed per item beforehand).
    """

    def __init__(
        self, data_dir: Path, augmentation: Augmentation, sampling: PromptSampling, flips: bool = False
    ) -> None:
        super().__init__(data_dir, augmentation, flips)
        self.sampling = sampling

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray | bool]:
        index, seed = key
        rng = np.random.default_rng(seed)
        item = self.items[index]
        image, labels = self.slice_of(index, rng)
        x = model_input(image)
        fg = foreground(x)
        present = np.unique(labels) if labels is not None else np.zeros(0, dtype=np.int64)
        present = present[present > 0]
        if len(present):
            label = int(rng.choice(present))
            mask = labels == label
            box = object_box(mask, label, item.slice is not None, self.sampling.prior_box, rng)
            target = model_mask(mask)
        else:
            label = 0
            box = random_box(fg, image.shape[0], image.shape[1], self.sampling.random_box_size, rng)
            target = np.zeros_like(fg, dtype=np.float32)
        with_prompts = bool(rng.random() < self.sampling.with_prompts)
        if with_prompts:
            points, scribbles = box_prompts(fg, box[None], [f"{item.case}:{label}:{item.slice}:{seed}"])
        else:
            points, scribbles = np.zeros((1, 4, 2), np.float32), np.zeros((1, 1) + fg.shape, np.float32)
        return {
            "image": x[0],
            "box": box.astype(np.float32),
            "points": points[0],
            "scribble": scribbles[0],
            "with_prompts": with_prompts,
            "mask": target,
            "labelled": bool(len(present)),
            "index": index,
        }


class IndexDataset(Dataset):
    """dataset[(index, seed)] -> {"index": index}, for n items whose data already lie on the device."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: tuple[int, int]) -> dict[str, int]:
        return {"index": key[0]}
