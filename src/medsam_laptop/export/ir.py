"""PyTorch -> OpenVINO IR: one image-encoder graph, prompt-encoder + mask-decoder graphs, a manifest.

LiteMedSAM has one decoder graph (boxes). The skip-feature decoder models (Swin-LiteMedSAM, and
litemedsam-skip: TinyViT with that decoder) have an encoder graph that also returns the skip features
their decoder needs, and one decoder graph per prompt mode (`architectures.ARCHITECTURES`).

The graphs are thin wrappers around the model; weights stay float32 (`compress_to_fp16=False`) so the
IR computes what PyTorch computes. Exporting twice with the same torch and OpenVINO versions gives the
same bytes; the manifest records both versions and every file's sha256.
"""

import json
import pickle
from pathlib import Path

import openvino as ov
import torch
from torch import nn

from ..architectures import ARCHITECTURES
from ..io.checkpoints import (
    OFFICIAL_ASSET,
    OFFICIAL_MODULE,
    OFFICIAL_PACKAGE,
    official_litemedsam_checkpoint,
    package_version,
    sha256_of,
)
from ..modality import MODALITY_GROUPS, modality_one_hot
from ..modeling import model_registry

IR_FILES = ("encoder.xml", "encoder.bin", "decoder.xml", "decoder.bin")


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded, or does not hold the model's keys and shapes."""


class Graph(nn.Module):
    """What one IR file computes: a thin wrapper whose `forward` names the graph's inputs (in order)
    and calls the model. The class name becomes the IR model's name."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model


class EncoderGraph(Graph):
    """image (1, 3, 256, 256) -> image_embeddings (1, 256, 64, 64)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode(image)


class BoxDecoderGraph(Graph):
    """image_embeddings (1, 256, 64, 64) + boxes (B, 4) in 256-space -> masks (B, 256, 256), iou (B, 1)."""

    def forward(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.model.decode(image_embeddings, boxes)  # one embedding, shared by the B boxes
        return logits[:, 0], iou


class ModalityBoxDecoderGraph(Graph):
    """`BoxDecoderGraph` + modality (1, G + 1), the one-hot of the case's modality token (`modality.py`)."""

    def forward(
        self, image_embeddings: torch.Tensor, boxes: torch.Tensor, modality: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.model.decode(image_embeddings, boxes, modality)
        return logits[:, 0], iou


def _convert(module: nn.Module, inputs: dict[str, tuple[list[int], torch.Tensor]], outputs: list[str]) -> ov.Model:
    example = tuple(t for _, t in inputs.values())
    graph = ov.convert_model(
        module, example_input=example, input=[(name, shape, ov.Type.f32) for name, (shape, _) in inputs.items()]
    )
    for output, name in zip(graph.outputs, outputs):
        output.get_tensor().set_names({name})
    # Node names come from process-wide counters; numbering them in graph order makes the IR reproducible.
    graph.set_friendly_name(type(module).__name__)
    for index, op in enumerate(graph.get_ordered_ops()):
        op.set_friendly_name(f"{op.get_type_name()}_{index}")
    return graph


def export_litemedsam(out_dir: Path, checkpoint: Path | None = None, model_name: str = "litemedsam") -> dict:
    """Writes encoder/decoder IR and manifest.json for LiteMedSAM (or litemedsam-modality, whose decoder also
    takes the modality one-hot and whose manifest lists the token groups) into `out_dir`; returns the manifest.
    The encoder graph is LiteMedSAM's, so the same TinyViT weights give the same encoder bytes."""
    source = checkpoint or official_litemedsam_checkpoint()
    model = model_registry[model_name](source)
    modality = {"modality": [1, len(MODALITY_GROUPS) + 1]} if model_name == "litemedsam-modality" else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    image = torch.rand(1, 3, 256, 256)
    embedding = torch.randn(1, 256, 64, 64)
    boxes = torch.tensor([[30.0, 40.0, 120.0, 150.0], [10.0, 10.0, 60.0, 90.0]])
    with torch.no_grad():
        encoder = _convert(EncoderGraph(model), {"image": ([1, 3, 256, 256], image)}, ["image_embeddings"])
        inputs = {"image_embeddings": ([1, 256, 64, 64], embedding), "boxes": ([-1, 4], boxes)}
        if modality:
            one_hot = torch.from_numpy(modality_one_hot(f"{MODALITY_GROUPS[0]}_example.npz"))
            inputs["modality"] = (modality["modality"], one_hot)
        graph = ModalityBoxDecoderGraph(model) if modality else BoxDecoderGraph(model)
        decoder = _convert(graph, inputs, ["masks", "iou_predictions"])
    ov.save_model(encoder, out_dir / "encoder.xml", compress_to_fp16=False)
    ov.save_model(decoder, out_dir / "decoder.xml", compress_to_fp16=False)
    manifest = {
        "model": model_name,
        "checkpoint": {
            "file": str(source.name) if checkpoint else f"{OFFICIAL_MODULE}/{OFFICIAL_ASSET}",
            "package": None if checkpoint else {"name": OFFICIAL_PACKAGE, "version": package_version(OFFICIAL_PACKAGE)},
            "sha256": sha256_of(source),
            "licence": None if checkpoint else "Apache-2.0 (bowang-lab/MedSAM, LiteMedSAM branch)",
        },
        "export": {
            "torch": torch.__version__,
            "openvino": ov.__version__,
            "compress_to_fp16": False,
            "encoder": {"inputs": {"image": [1, 3, 256, 256]}, "outputs": {"image_embeddings": [1, 256, 64, 64]}},
            "decoder": {
                "inputs": {"image_embeddings": [1, 256, 64, 64], "boxes": ["B", 4], **modality},
                "outputs": {"masks": ["B", 256, 256], "iou_predictions": ["B", 1]},
            },
        },
        "files": {name: sha256_of(out_dir / name) for name in IR_FILES},
    }
    if modality:
        manifest["export"]["decoder"]["modality_groups"] = list(MODALITY_GROUPS)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


SKIP_FEATURES = {"image_embeddings": [1, 256, 64, 64], "fine_skip": [1, 128, 128, 128], "fused_skips": [1, 256, 64, 64]}
SKIP_PROMPT_INPUTS = {"points": ["B", 4, 2], "scribbles": ["B", 1, 256, 256]}
SKIP_OUTPUTS = {"masks": ["B", 256, 256], "iou_predictions": ["B", 1]}
SKIP_DECODER_FILES = {"box-points-scribble": "decoder", "box": "decoder_box"}


class SkipEncoderGraph(EncoderGraph):
    """image (1, 3, 256, 256) -> image_embeddings (1, 256, 64, 64), fine_skip = fs0 (1, 128, 128, 128),
    fused_skips (1, 256, 64, 64): the decoder's prompt-independent neck runs here, once per image."""


class SkipDecoderGraph(Graph):
    """The three image features (batch 1) + boxes (B, 4) [+ points (B, 4, 2), scribbles (B, 1, 256, 256)]
    in 256-space -> masks (B, 256, 256), iou (B, 1). Traced without points and scribbles, it is the
    box-only graph."""

    def forward(
        self,
        image_embeddings: torch.Tensor,
        fine_skip: torch.Tensor,
        fused_skips: torch.Tensor,
        boxes: torch.Tensor,
        points: torch.Tensor | None = None,
        scribbles: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.model.decode(image_embeddings, fine_skip, fused_skips, boxes, points, scribbles)
        return logits[:, 0], iou


def export_skip_decoder_model(out_dir: Path, checkpoint: Path, model_name: str = "swin-litemedsam") -> dict:
    """Writes the encoder IR, one decoder IR per prompt mode of `architectures.ARCHITECTURES` ("box-points-scribble":
    decoder.xml, "box": decoder_box.xml) and manifest.json of a skip-feature decoder model into `out_dir`;
    returns the manifest.

    model_name: "swin-litemedsam" (checkpoint: the authors' Swin_LiteMedSAM.pth, bare state_dict or
    {"model": ...}; no weights are bundled, so there is no default) or "litemedsam-skip" (a state_dict of
    that model, e.g. from finetune-decoder).
    """
    try:
        model = model_registry[model_name](checkpoint)
    except (RuntimeError, KeyError, pickle.UnpicklingError) as err:  # torch.load's and load_state_dict's errors
        raise CheckpointError(f"{checkpoint} is not a {model_name} checkpoint: {err}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    image = torch.rand(1, 3, 256, 256)
    features = {name: ([*shape], torch.randn(*shape)) for name, shape in SKIP_FEATURES.items()}
    boxes = torch.tensor([[30.0, 40.0, 120.0, 150.0], [10.0, 10.0, 60.0, 90.0]])
    points = torch.tensor([[[60.0, 80.0], [50.0, 120.0], [100.0, 120.0], [90.0, 70.0]], [[20.0, 30.0]] * 4])
    scribbles = (torch.rand(2, 1, 256, 256) > 0.99).float()
    modes, decoders = ARCHITECTURES[model_name].prompts, {}
    with torch.no_grad():
        encoder = _convert(SkipEncoderGraph(model), {"image": ([1, 3, 256, 256], image)}, list(SKIP_FEATURES))
        ov.save_model(encoder, out_dir / "encoder.xml", compress_to_fp16=False)
        for mode in modes:
            stem = SKIP_DECODER_FILES[mode]
            # With points and scribbles the graph takes one box a call: with a dynamic box count
            # OpenVINO 2026.4's CPU plugin gives an empty batch (the engine loops over the boxes).
            batch, n = (-1, "B") if mode == "box" else (1, 1)
            inputs = {**features, "boxes": ([batch, 4], boxes[:1] if batch == 1 else boxes)}
            if mode != "box":
                inputs |= {"points": ([1, 4, 2], points[:1]), "scribbles": ([1, 1, 256, 256], scribbles[:1])}
            graph = _convert(SkipDecoderGraph(model), inputs, list(SKIP_OUTPUTS))
            ov.save_model(graph, out_dir / f"{stem}.xml", compress_to_fp16=False)
            prompt_inputs = {k: [n, *shape[1:]] for k, shape in SKIP_PROMPT_INPUTS.items()} if mode != "box" else {}
            decoders[mode] = {
                "file": f"{stem}.xml",
                "inputs": {**SKIP_FEATURES, "boxes": [n, 4], **prompt_inputs},
                "outputs": {k: [n, *shape[1:]] for k, shape in SKIP_OUTPUTS.items()},
            }
    files = ["encoder.xml", "encoder.bin"] + [f"{SKIP_DECODER_FILES[m]}.{ext}" for m in modes for ext in ("xml", "bin")]
    manifest = {
        "model": model_name,
        "checkpoint": {"file": checkpoint.name, "sha256": sha256_of(checkpoint)},
        "export": {
            "torch": torch.__version__,
            "openvino": ov.__version__,
            "compress_to_fp16": False,
            "encoder": {"file": "encoder.xml", "inputs": {"image": [1, 3, 256, 256]}, "outputs": SKIP_FEATURES},
            "decoders": decoders,
        },
        "files": {name: sha256_of(out_dir / name) for name in files},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


STAGE_OUTPUTS = {
    "image_embeddings": [1, 256, 64, 64],
    "fs0": [1, 128, 128, 128],
    "fs1": [1, 160, 64, 64],
    "fs2": [1, 320, 64, 64],
    "fs3": [1, 320, 64, 64],
}


class StageEncoderGraph(Graph):
    """image (1, 3, 256, 256) -> LiteMedSAM's embedding and TinyViT's four stage outputs (`STAGE_OUTPUTS`)."""

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embedding, stages = self.model.image_encoder.forward_with_stages(image)
        return embedding, *stages


def export_stage_encoder(out_dir: Path, checkpoint: Path) -> None:
    """Writes encoder.xml/.bin of LiteMedSAM's TinyViT with its stage outputs (for the stage feature cache)
    into `out_dir`."""
    model = model_registry["litemedsam"](checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        graph = _convert(
            StageEncoderGraph(model), {"image": ([1, 3, 256, 256], torch.rand(1, 3, 256, 256))}, list(STAGE_OUTPUTS)
        )
    ov.save_model(graph, out_dir / "encoder.xml", compress_to_fp16=False)
