"""A model folder's manifest.json: what its graphs take, and how to make a graph that is missing.

`export.decoders` maps each prompt mode to its decoder graph and that graph's inputs; a manifest without
it (LiteMedSAM's, or none at all) describes one box decoder, decoder.xml. `export.decoder.modality_groups`
lists the groups of a modality-aware decoder's tokens (litemedsam-modality).
"""

import json
from pathlib import Path

from ..architectures import ARCHITECTURES, SKIP_GRAPHS

MISSING_GRAPH_HINTS = {
    "encoder.xml": " (make it with python -m medsam_laptop "
    + "; ".join(" ".join(arch.export_command(name)) for name, arch in ARCHITECTURES.items() if arch.bundled)
    + "; or import-checkpoint for a checkpoint of "
    + ", ".join(name for name, arch in ARCHITECTURES.items() if arch.graphs == SKIP_GRAPHS)
    + ")",
    "encoder-int8.xml": " (make it with the quantize command)",
}


def decoder_specs(model_dir: Path) -> dict[str, dict]:
    """Prompt mode -> {"file": ..., "inputs": {name: shape}} from the manifest, the model's default first.

    A manifest without `decoders` (LiteMedSAM's, or none at all) describes one box decoder, decoder.xml.
    """
    export = read_manifest(model_dir).get("export", {})
    if "decoders" in export:
        return export["decoders"]
    inputs = export.get("decoder", {}).get("inputs", {"image_embeddings": [1, 256, 64, 64], "boxes": ["B", 4]})
    return {"box": {"file": "decoder.xml", "inputs": inputs}}


def modality_groups(model_dir: Path) -> tuple[str, ...] | None:
    """The groups of a modality-aware decoder's tokens, in token order; None for any other decoder."""
    groups = read_manifest(model_dir).get("export", {}).get("decoder", {}).get("modality_groups")
    return None if groups is None else tuple(groups)


def read_manifest(model_dir: Path) -> dict:
    path = model_dir / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}
