"""The architectures the project builds, in one table that every other place reads (torch-free and
numpy-free: the command line reads it before it decides how to start).

An architecture is what a model folder under `weights/` holds (its manifest's "model"); a shipped model
such as litemedsam-wide is a folder of its own with a litemedsam architecture. Each entry gives:
- `prompts`: the prompt modes its decoder takes, its default first (`contract.PROMPT_MODES`);
- `graphs`: how its OpenVINO IR is made. LITEMEDSAM_GRAPHS: LiteMedSAM's encoder and decoder graphs
  (`export.export_litemedsam`, the `export` command). SKIP_GRAPHS: an encoder graph that also returns the
  skip features, and one decoder graph per prompt mode (`export.export_skip_decoder_model`, the
  `import-checkpoint` command);
- `cached_features`: the feature cache `finetune-decoder` trains its decoder on ("embedding": the
  encoder's output; "stages": the four stage outputs), None where that command does not train it;
- `bundled`: whether the project ships its weights, so that it exports without a checkpoint.

The torch builders are `modeling.model_registry`, under the same names.
"""

from dataclasses import dataclass
from pathlib import Path

from .engines.contract import BOX_ONLY, PROMPT_MODES

LITEMEDSAM_GRAPHS = "litemedsam"
SKIP_GRAPHS = "skip-decoder"


@dataclass(frozen=True)
class Architecture:
    prompts: tuple[str, ...]
    graphs: str
    cached_features: str | None
    bundled: bool = False

    def export_command(self, name: str, checkpoint: Path | None = None) -> list[str]:
        """The `python -m medsam_laptop` arguments that write this architecture's IR under weights/NAME from
        `checkpoint`; None (bundled architectures only): from the bundled weights."""
        if self.graphs == LITEMEDSAM_GRAPHS:
            return ["export", "--model", name, *(["--checkpoint", str(checkpoint)] if checkpoint else [])]
        return ["import-checkpoint", "--model", name, str(checkpoint)]


ARCHITECTURES = {
    # The organizers' LiteMedSAM, and the decoder that finetune-decoder tunes from it.
    "litemedsam": Architecture((BOX_ONLY,), LITEMEDSAM_GRAPHS, "embedding", bundled=True),
    # LiteMedSAM with a learned token per modality group (`modality.py`), fed to its decoder.
    "litemedsam-modality": Architecture((BOX_ONLY,), LITEMEDSAM_GRAPHS, "embedding"),
    # Swin-LiteMedSAM as its authors built it: a user's checkpoint, box-derived points and a scribble.
    "swin-litemedsam": Architecture(PROMPT_MODES, SKIP_GRAPHS, None),
    # LiteMedSAM's TinyViT with Swin-LiteMedSAM's skip-feature decoder, trained with boxes alone.
    "litemedsam-skip": Architecture((BOX_ONLY,), SKIP_GRAPHS, "stages"),
}
# The model folder (under the weights folder) that predict, the container and the demo run unless told
# otherwise: LiteMedSAM with its decoder fine-tuned on both training folders, made the default by the
# shipping rule (its manifest.json holds the verdict). OFFICIAL_MODEL is the organizers' LiteMedSAM.
DEFAULT_MODEL = "litemedsam-wide"
OFFICIAL_MODEL = "litemedsam"
