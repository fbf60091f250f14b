"""INT8 encoder: NNCF post-training quantization of an exported f32 encoder IR.

Calibration images are the model inputs of a training folder (never the evaluation set): every 2D
case, and for each 3D case one slice inside each box's z-range (picked with a fixed seed), all
preprocessed exactly as at inference. The result is `encoder-int8.xml/.bin` beside the f32 IR, and
`int8.json` records how it was made (NNCF and OpenVINO versions, the calibration images, sha256s).
Only the encoder is quantized: it is most of the compute, and the decoder's logits decide mask edges.
Within it, `float_layers` stay unquantized: TinyViT's convolutional start (the stem and stage 1, at the
input's full 256 x 256, where values are still close to pixels) and the neck's last convolution, which
writes the embedding. Chosen on the training cases alone, never on the evaluation set: the candidates
and their figures are in benchmarks/notes/2026-12-02-int8.md, the gate's verdict per CPU in BENCHMARKS.md.
Export-time only (needs nncf); `predict --precision int8` (or int8+bf16-f32) runs the result.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov

from ..engines.precision import INT8_FILES, INT8_RECORD_FILE
from ..inference.transforms import model_input
from ..io.cases import read_case
from ..io.checkpoints import package_version, sha256_of
from ..io.evaluation_guard import check_not_evaluation_set

SEED = 0
CONVOLUTIONS = ("Convolution", "GroupConvolution")


def calibration_images(data_dir: Path) -> Iterator[tuple[str, int | None, np.ndarray]]:
    """(case file name, slice index or None for 2D, the 2D image) of every calibration image, in a fixed
    order; each case is read once."""
    rng = np.random.default_rng(SEED)
    for path in sorted((check_not_evaluation_set(data_dir, "calibrate") / "imgs").glob("*.npz")):
        case = read_case(path)
        if not case.is_3d:
            yield path.name, None, case.image
            continue
        for box in case.boxes:  # (x0, y0, z0, x1, y1, z1)
            z0, z1 = np.clip(box[[2, 5]], 0, case.image.shape[0] - 1).astype(int)
            z = int(rng.integers(z0, max(z0, z1) + 1))
            yield path.name, z, case.image[z]


class QuantizeError(Exception):
    """An encoder or a calibration folder that this quantization cannot use."""


def float_layers(model: ov.Model) -> list[str]:
    """Names of a TinyViT encoder's layers left unquantized: every convolution before the first attention
    (the stem and stage 1) and the last convolution (the neck's 3 x 3, which writes the embedding)."""
    ops = model.get_ordered_ops()
    attention = [i for i, op in enumerate(ops) if op.get_type_name() == "ScaledDotProductAttention"]
    if not attention:
        raise QuantizeError("the encoder has no attention layer: float_layers knows TinyViT's layout only")
    first_attention = attention[0]
    early = [op.get_friendly_name() for op in ops[:first_attention] if op.get_type_name() in CONVOLUTIONS]
    last = [op.get_friendly_name() for op in ops if op.get_type_name() == "Convolution"][-1]
    return [*early, last]


def quantize_encoder(model_dir: Path, data_dir: Path) -> dict:
    """Writes encoder-int8.xml/.bin and int8.json into `model_dir` (which holds encoder.xml); returns int8.json."""
    items, inputs = [], []
    for name, z, image in calibration_images(data_dir):
        items.append((name, z))
        inputs.append(model_input(image))
    if not items:
        raise QuantizeError(f"no calibration cases in {data_dir / 'imgs'}")
    import nncf  # after the data checks, which need no nncf

    model = ov.Core().read_model(model_dir / "encoder.xml")
    kept_float = float_layers(model)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(inputs),
        subset_size=len(inputs),
        model_type=nncf.ModelType.TRANSFORMER,
        ignored_scope=nncf.IgnoredScope(names=kept_float),
    )
    ov.save_model(quantized, model_dir / INT8_FILES[0], compress_to_fp16=False)
    record = {
        "source": {
            "encoder.xml": sha256_of(model_dir / "encoder.xml"),
            "encoder.bin": sha256_of(model_dir / "encoder.bin"),
        },
        "nncf": package_version("nncf"),
        "openvino": ov.__version__,
        "method": "nncf.quantize, model_type TRANSFORMER, default preset; weights and activations INT8 except "
        "the layers kept float",
        "kept_float": kept_float,
        "calibration": {
            "data": data_dir.name,
            "images": len(items),
            "seed": SEED,
            "items": [name if z is None else f"{name}:{z}" for name, z in items],
        },
        "files": {name: sha256_of(model_dir / name) for name in INT8_FILES},
    }
    (model_dir / INT8_RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
