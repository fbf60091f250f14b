"""The frozen-encoder feature cache: LiteMedSAM's OpenVINO f32 encoder outputs for every training item
that inference would encode, so that decoders can train without running the encoder.

What is kept per item (`features`):
- "embedding": the image embedding, all LiteMedSAM's decoder takes;
- "stages": the embedding and TinyViT's four stage outputs fs0-fs3, all a skip-feature decoder takes
  (litemedsam-skip). Their encoder graph (`export.export_stage_encoder`) is written into CACHE/encoder/.

Items: every 2D case, and every slice of a 3D case inside one of its boxes' z ranges (the slices the
propagation visits), each as given and, with `flips`, mirrored left to right (the image is flipped before
preprocessing, so a flipped item is the encoding of the flipped image, padding still at the right).
Only cases with ground truth count: the cache serves supervised training.

Layout of CACHE (one folder per encoder and settings):
    cache.json                    the settings, the encoder's sha256s and the item list
    <case stem>/<slice>[-flip].npy  "embedding": (256, 64, 64) float16; <slice> is "2d" for 2D cases
    <case stem>/<slice>[-flip].npz  "stages": `STAGE_SHAPES`, float16 each
    encoder/                      "stages": the encoder graph the items come from

Each file is written whole or not at all, so a killed run resumes where it stopped; a cache.json with
other settings is refused instead of mixed with.
"""

import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import openvino

from ...engines.openvino_engine import compile_config
from ...inference.segment import z_ranges
from ...inference.transforms import model_input
from ...io.atomic import remove_stale_temporaries, write_atomically
from ...io.case_files import is_3d_name
from ...io.cases import read_case
from ...io.checkpoints import sha256_of
from ...io.evaluation_guard import check_not_evaluation_set
from ..items import Item, item_plane

EMBEDDING_SHAPE = (256, 64, 64)
STAGE_SHAPES = {"embedding": EMBEDDING_SHAPE, "fs0": (128, 128, 128), "fs1": (160, 64, 64)}
STAGE_SHAPES |= {"fs2": (320, 64, 64), "fs3": (320, 64, 64)}
FEATURE_SHAPES = {"embedding": {"embedding": EMBEDDING_SHAPE}, "stages": STAGE_SHAPES}
SUFFIXES = {"embedding": ".npy", "stages": ".npz"}
ENCODER_FILES = ("encoder.xml", "encoder.bin")


class CacheError(Exception):
    """A cache that cannot be built or used as asked; the message says why."""


def item_path(item: Item, features: str = "embedding") -> Path:
    """Where the item's features lie in a cache, relative to its folder."""
    name = "2d" if item.slice is None else str(item.slice)
    return Path(item.case.removesuffix(".npz")) / f"{name}{'-flip' if item.flip else ''}{SUFFIXES[features]}"


def box_slices(boxes: np.ndarray, depth: int) -> list[int]:
    """Slices inside any 3D box's z range [z_min, z_max] (clipped to the volume, as inference clips it)."""
    z_lo, z_hi, _ = z_ranges(boxes, depth)
    return sorted({z for lo, hi in zip(z_lo, z_hi) for z in range(lo, hi + 1)})


def list_items(data_dir: Path, cases: list[str] | None = None, flips: bool = True) -> list[Item]:
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
            originals.extend(Item(name, z, False) for z in box_slices(case.boxes, case.image.shape[0]))
        elif len(case.boxes):
            originals.append(Item(name, None, False))
    flipped = [Item(i.case, i.slice, True) for i in originals] if flips else []
    return originals + flipped


def item_image(data_dir: Path, item: Item, image: np.ndarray | None = None) -> np.ndarray:
    """The item's uint8 image as the encoder sees it before preprocessing: (H, W, 3) or a (H, W) slice,
    mirrored when the item is flipped. `image`: the case's imgs, when the caller has read them already."""
    if image is None:
        image = read_case(data_dir / "imgs" / item.case).image
    return item_plane(image, item)


def encoder_dir(cache_dir: Path, weights_dir: Path, features: str) -> Path:
    """The folder of the encoder graph: the bundled LiteMedSAM's for "embedding"; for "stages", CACHE/encoder,
    exported there from the official checkpoint when absent."""
    if features == "embedding":
        return weights_dir / "litemedsam"
    folder = cache_dir / "encoder"
    if not folder.is_dir():
        from ...export.ir import export_stage_encoder  # torch: only this kind of cache needs it
        from ...io.checkpoints import official_litemedsam_checkpoint

        scratch = Path(tempfile.mkdtemp(prefix=".encoder-", dir=cache_dir))  # the folder appears whole or not
        export_stage_encoder(scratch, official_litemedsam_checkpoint())
        scratch.rename(folder)
    return folder


def settings(data_dir: Path, encoder: Path, features: str, flips: bool, cases: list[str] | None) -> dict:
    """What makes two caches interchangeable: encoder bytes, precision, outputs kept, data folder, flips,
    case choice."""
    return {
        "encoder": {
            "model": "litemedsam",
            "precision": "f32",
            "sha256": {f: sha256_of(encoder / f) for f in ENCODER_FILES},
            "openvino": openvino.__version__,
        },
        "features": features,
        "data_dir": str(data_dir.resolve()),
        "flips": flips,
        "cases": None if cases is None else sorted(cases),
        "dtype": "float16",
        "shapes": {name: list(shape) for name, shape in FEATURE_SHAPES[features].items()},
    }


def read_manifest(cache_dir: Path) -> dict:
    path = cache_dir / "cache.json"
    if not path.is_file():
        raise CacheError(f"{cache_dir} holds no feature cache (no cache.json); build it with cache-features")
    return json.loads(path.read_text())


def cached_items(cache_dir: Path) -> list[Item]:
    return [Item(**entry) for entry in read_manifest(cache_dir)["items"]]


def missing_items(cache_dir: Path, items: list[Item], features: str) -> list[Item]:
    return [item for item in items if not (cache_dir / item_path(item, features)).is_file()]


def load_features(cache_dir: Path, item: Item, features: str) -> dict[str, np.ndarray]:
    """{name: float32 array} of `FEATURE_SHAPES[features]` from the item's float16 file."""
    path = cache_dir / item_path(item, features)
    if features == "embedding":
        return {"embedding": np.load(path, allow_pickle=False).astype(np.float32)}
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name].astype(np.float32) for name in STAGE_SHAPES}


def disk_need(n_missing: int, features: str) -> int:
    """Bytes of n_missing items: float16 values and about 256 bytes of headers per array."""
    shapes = FEATURE_SHAPES[features].values()
    return n_missing * sum(int(np.prod(shape)) * 2 + 256 for shape in shapes)


def build_cache(
    data_dir: Path,
    cache_dir: Path,
    weights_dir: Path,
    flips: bool = True,
    cases: list[str] | None = None,
    threads: int = 0,
    features: str = "embedding",
) -> list[Item]:
    """Encodes every missing item into CACHE (see the module docstring); returns all items.

    Prints the item count and the disk it needs before encoding, and refuses to start when the disk has
    less free space than that. Raises CacheError for an existing cache of other settings.
    """
    data_dir = check_not_evaluation_set(Path(data_dir), "train")
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / "cache.json"
    existing = read_manifest(cache_dir) if manifest_path.is_file() else None
    other_settings = CacheError(f"{cache_dir} holds a cache of other settings; use another folder or remove it")
    if existing is not None and existing["features"] != features:
        raise other_settings
    encoder = encoder_dir(cache_dir, weights_dir, features)
    wanted = settings(data_dir, encoder, features, flips, cases)
    if existing is not None:
        if {k: v for k, v in existing.items() if k != "items"} != wanted:
            raise other_settings
        items = [Item(**entry) for entry in existing["items"]]
    else:
        items = list_items(data_dir, cases, flips)
        manifest = wanted | {"items": [asdict(i) for i in items]}
        write_atomically(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode())
    remove_stale_temporaries(cache_dir)
    todo = missing_items(cache_dir, items, features)
    need, free = disk_need(len(todo), features), shutil.disk_usage(cache_dir).free
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
    encode = _encoder(encoder, threads, len(FEATURE_SHAPES[features]))
    began, image, image_case = time.perf_counter(), None, None
    for done, item in enumerate(todo, start=1):
        if item.case != image_case:
            image, image_case = read_case(data_dir / "imgs" / item.case).image, item.case
        outputs = encode(model_input(item_image(data_dir, item, image)))
        path = cache_dir / item_path(item, features)
        path.parent.mkdir(exist_ok=True)
        arrays = {name: output[0].astype(np.float16) for name, output in zip(FEATURE_SHAPES[features], outputs)}
        write_atomically(path, _npy_bytes(arrays["embedding"]) if features == "embedding" else _npz_bytes(arrays))
        if done % 25 == 0 or done == len(todo):
            per_item = (time.perf_counter() - began) / done
            left = int(per_item * (len(todo) - done))
            print(
                f"  {done}/{len(todo)} encoded, {per_item:.2f} s/item, {left // 60} min {left % 60} s left",
                file=sys.stderr,
                flush=True,
            )
    return items


def _encoder(encoder: Path, threads: int, outputs: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The graph of ENCODER/encoder.xml compiled as the engine compiles it in f32: model input (1, 3, 256,
    256) -> copies of all its outputs, in order. Raises CacheError unless it has `outputs` outputs."""
    config = compile_config("f32", threads)
    request = openvino.Core().compile_model(encoder / "encoder.xml", "CPU", config).create_infer_request()
    if len(request.model_outputs) != outputs:
        raise CacheError(f"{encoder / 'encoder.xml'} has {len(request.model_outputs)} outputs, not {outputs}")

    def encode(image: np.ndarray) -> list[np.ndarray]:
        request.infer([image])
        return [request.get_output_tensor(i).data.copy() for i in range(len(request.model_outputs))]

    return encode


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
