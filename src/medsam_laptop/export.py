"""PyTorch -> OpenVINO IR: one image-encoder graph, one prompt-encoder + mask-decoder graph, a manifest.

The graphs are thin wrappers around the model; weights stay float32 (`compress_to_fp16=False`) so the
IR computes what PyTorch computes. Exporting twice with the same torch and OpenVINO versions gives the
same bytes; the manifest records both versions and every file's sha256.
"""
import json
from pathlib import Path

import openvino as ov
import torch
from torch import nn

from .checkpoints import (
    OFFICIAL_ASSET,
    OFFICIAL_MODULE,
    OFFICIAL_PACKAGE,
    official_litemedsam_checkpoint,
    package_version,
    sha256_of,
)
from .modeling import model_registry

IR_FILES = ("encoder.xml", "encoder.bin", "decoder.xml", "decoder.bin")


class EncoderGraph(nn.Module):
    """image (1, 3, 256, 256) -> image_embeddings (1, 256, 64, 64)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode(image)


class BoxDecoderGraph(nn.Module):
    """image_embeddings (1, 256, 64, 64) + boxes (B, 4) in 256-space -> masks (B, 256, 256), iou (B, 1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = image_embeddings.expand(boxes.shape[0], -1, -1, -1)
        logits, iou = self.model.decode(embeddings, boxes)
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


def export_litemedsam(out_dir: Path, checkpoint: Path | None = None) -> dict:
    """Writes encoder/decoder IR and manifest.json for LiteMedSAM into `out_dir`; returns the manifest."""
    source = checkpoint or official_litemedsam_checkpoint()
    model = model_registry["litemedsam"](source)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    image = torch.rand(1, 3, 256, 256)
    embedding = torch.randn(1, 256, 64, 64)
    boxes = torch.tensor([[30.0, 40.0, 120.0, 150.0], [10.0, 10.0, 60.0, 90.0]])
    with torch.no_grad():
        encoder = _convert(EncoderGraph(model), {"image": ([1, 3, 256, 256], image)}, ["image_embeddings"])
        decoder = _convert(
            BoxDecoderGraph(model),
            {"image_embeddings": ([1, 256, 64, 64], embedding), "boxes": ([-1, 4], boxes)},
            ["masks", "iou_predictions"],
        )
    ov.save_model(encoder, out_dir / "encoder.xml", compress_to_fp16=False)
    ov.save_model(decoder, out_dir / "decoder.xml", compress_to_fp16=False)
    manifest = {
        "model": "litemedsam",
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
                "inputs": {"image_embeddings": [1, 256, 64, 64], "boxes": ["B", 4]},
                "outputs": {"masks": ["B", 256, 256], "iou_predictions": ["B", 1]},
            },
        },
        "files": {name: sha256_of(out_dir / name) for name in IR_FILES},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
