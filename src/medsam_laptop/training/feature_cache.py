"""The frozen-encoder feature cache: LiteMedSAM's OpenVINO f32 image embedding of every training item
that inference would encode, so that decoders can train without running the encoder.

Items: every 2D case, and every slice of a 3D case inside one of its boxes' z ranges (the slices the
propagation visits), each as given and, with `flips`, mirrored left to right (the image is flipped before
preprocessing, so a flipped item is the encoding of the flipped image, padding still at the right).
Only cases with ground truth count: the cache serves supervised training.

Layout of CACHE (one folder per encoder and settings):
    cache.json                    the settings, the encoder's sha256s and the item list
    <case stem>/<slice>[-flip].npy  (256, 64, 64) float16; <slice> is "2d" for 2D cases

Each file is written whole or not at all, so a killed run resumes where it stopped; a cache.json with
other settings is refused instead of mixed with.
"""

import io
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import openvino

from ..atomic import remove_stale_temporaries, write_atomically
from ..cases import is_3d_name, read_case
from ..checkpoints import sha256_of
from ..engine import OpenVINOEngine
from ..evaluation_guard import check_not_evaluation_set
from ..segment import z_ranges
from ..transforms import model_input

EMBEDDING_SHAPE = (256, 64, 64)
ITEM_BYTES = int(np.prod(EMBEDDING_SHAPE)) * 2 + 128  # float16 and the .npy header
ENCODER_FILES = ("encoder.xml", "encoder.bin")


class CacheError(RuntimeError):
    """A cache that cannot be built or used as asked; the message says why."""


@dataclass(frozen=True)
class CacheItem:
    case: str  # file name under imgs/
    slice: int | None  # 3D: slice index; 2D: None
    flip: bool  # mirrored left to right

    def relative_path(self) -> Path:
        name = "2d" if self.slice is None else str(self.slice)
        return Path(self.case.removesuffix(".npz")) / f"{name}{'-flip' if self.flip else ''}.npy"


def box_slices(boxes: np.ndarray, depth: int) -> list[int]:
    """Slices inside any 3D box's z range [z_min, z_max] (clipped to the volume, as inference clips it)."""
    z_lo, z_hi, _ = z_ranges(boxes, depth)
    return sorted({z for lo, hi in zip(z_lo, z_hi) for z in range(lo, hi + 1)})


def list_items(data_dir: Path, cases: list[str] | None = None, flips: bool = True) -> list[CacheItem]:
    """The items of DATA's labelled cases (all, or the named ones) in file-name order; flipped copies follow
    all originals, so a cache cut short still holds every original item first. A case without boxes has
    no item."""
    names = sorted(p.name for p in (data_dir / "imgs").glob("*.npz") if (data_dir / "gts" / p.name).is_file())
    if cases is not None:
        wanted = set(cases)
        if wanted - set(names):
            raise CacheError(f"no labelled case {sorted(wanted - set(names))[0]} under {data_dir}")
        names = [n for n in names if n in wanted]
    originals = []
    for name in names:
        case = read_case(data_dir / "imgs" / name)
        if is_3d_name(name):
            originals.extend(CacheItem(name, z, False) for z in box_slices(case.boxes, case.image.shape[0]))
        elif len(case.boxes):
            originals.append(CacheItem(name, None, False))
    flipped = [CacheItem(i.case, i.slice, True) for i in originals] if flips else []
    return originals + flipped


def item_image(data_dir: Path, item: CacheItem, image: np.ndarray | None = None) -> np.ndarray:
    """The item's uint8 image as the encoder sees it before preprocessing: (H, W, 3) or a (H, W) slice,
    mirrored when the item is flipped. `image`: the case's imgs, when the caller has read them already."""
    if image is None:
        image = read_case(data_dir / "imgs" / item.case).image
    if item.slice is not None:
        image = image[item.slice]
    return np.ascontiguousarray(image[:, ::-1]) if item.flip else image


def settings(data_dir: Path, weights_dir: Path, flips: bool, cases: list[str] | None) -> dict:
    """What makes two caches interchangeable: encoder bytes, precision, data folder, flips, case choice."""
    model_dir = weights_dir / "litemedsam"
    return {
        "encoder": {
            "model": "litemedsam",
            "precision": "f32",
            "sha256": {f: sha256_of(model_dir / f) for f in ENCODER_FILES},
            "openvino": openvino.__version__,
        },
        "data_dir": str(data_dir.resolve()),
        "flips": flips,
        "cases": None if cases is None else sorted(cases),
        "dtype": "float16",
        "shape": list(EMBEDDING_SHAPE),
    }


def read_manifest(cache_dir: Path) -> dict:
    path = cache_dir / "cache.json"
    if not path.is_file():
        raise CacheError(f"{cache_dir} holds no feature cache (no cache.json); build it with cache-features")
    return json.loads(path.read_text())


def cached_items(cache_dir: Path) -> list[CacheItem]:
    return [CacheItem(**entry) for entry in read_manifest(cache_dir)["items"]]


def missing_items(cache_dir: Path, items: list[CacheItem]) -> list[CacheItem]:
    return [item for item in items if not (cache_dir / item.relative_path()).is_file()]


def load_embedding(cache_dir: Path, item: CacheItem) -> np.ndarray:
    """(256, 64, 64) float32 from the item's float16 file."""
    return np.load(cache_dir / item.relative_path(), allow_pickle=False).astype(np.float32)


def disk_need(n_missing: int) -> int:
    return n_missing * ITEM_BYTES


def build_cache(
    data_dir: Path,
    cache_dir: Path,
    weights_dir: Path,
    flips: bool = True,
    cases: list[str] | None = None,
    threads: int = 0,
) -> list[CacheItem]:
    """Encodes every missing item into CACHE (see the module docstring); returns all items.

    Prints the item count and the disk it needs before encoding, and refuses to start when the disk has
    less free space than that. Raises CacheError for an existing cache of other settings.
    """
    data_dir = check_not_evaluation_set(Path(data_dir), "train")
    wanted = settings(data_dir, weights_dir, flips, cases)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / "cache.json"
    if manifest_path.is_file():
        existing = read_manifest(cache_dir)
        if {k: v for k, v in existing.items() if k != "items"} != wanted:
            raise CacheError(f"{cache_dir} holds a cache of other settings; use another folder or remove it")
        items = [CacheItem(**entry) for entry in existing["items"]]
    else:
        items = list_items(data_dir, cases, flips)
        manifest = wanted | {"items": [asdict(i) for i in items]}
        write_atomically(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode())
    remove_stale_temporaries(cache_dir)
    todo = missing_items(cache_dir, items)
    need, free = disk_need(len(todo)), shutil.disk_usage(cache_dir).free
    print(
        f"feature cache {cache_dir}: {len(items)} items, {len(items) - len(todo)} present, {len(todo)} to encode; "
        f"needs {need / 2**30:.2f} GiB, {free / 2**30:.1f} GiB free",
        file=sys.stderr,
        flush=True,
    )
    if need > free:
        raise CacheError(f"{cache_dir}: {need / 2**30:.2f} GiB needed, only {free / 2**30:.1f} GiB free")
    if not todo:
        return items
    engine = OpenVINOEngine(weights_dir / "litemedsam", "f32", threads)
    began, image, image_case = time.perf_counter(), None, None
    for done, item in enumerate(todo, start=1):
        if item.case != image_case:
            image, image_case = read_case(data_dir / "imgs" / item.case).image, item.case
        embedding = engine.encode(model_input(item_image(data_dir, item, image)))[0].astype(np.float16)
        path = cache_dir / item.relative_path()
        path.parent.mkdir(exist_ok=True)
        write_atomically(path, _npy_bytes(embedding))
        if done % 25 == 0 or done == len(todo):
            per_item = (time.perf_counter() - began) / done
            left = int(per_item * (len(todo) - done))
            print(
                f"  {done}/{len(todo)} encoded, {per_item:.2f} s/item, {left // 60} min {left % 60} s left",
                file=sys.stderr,
                flush=True,
            )
    return items


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
