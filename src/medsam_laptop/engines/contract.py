"""The engine contract: what the OpenVINO and PyTorch engines give the segmentation code.

An engine has a prompt mode, `prompt_mode`:
- "box": the decoder takes boxes only (LiteMedSAM);
- "box-points-scribble": it also takes 4 box-derived points and a scribble per box (Swin-LiteMedSAM's
  default; `prompts.py` makes them).

`encode(image (1, 3, 256, 256) float32) -> Features`: LiteMedSAM's (1, 256, 64, 64) embedding, or a
tuple of every encoder output when the model has several (Swin-LiteMedSAM: embedding and skip features).
`decode(features, boxes (B, 4) float32 in 256-space, points (B, 4, 2) | None, scribbles (B, 1, 256, 256)
| None) -> logits (B, 256, 256) float32`; points and scribbles are required in "box-points-scribble" mode.
`for_case(name) -> Engine`: the engine to segment that case with; a modality-aware model's engine with the
case's modality token chosen, any other engine itself.
"""

from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:  # the command line imports this module before it decides how to start (startup.py)
    import numpy as np

BOX_ONLY = "box"
PROMPT_MODES = ("box-points-scribble", BOX_ONLY)

Features: TypeAlias = "np.ndarray | tuple[np.ndarray, ...]"


class Engine(Protocol):
    prompt_mode: str

    def encode(self, image: "np.ndarray") -> Features: ...

    def decode(
        self,
        features: Features,
        boxes: "np.ndarray",
        points: "np.ndarray | None" = None,
        scribbles: "np.ndarray | None" = None,
    ) -> "np.ndarray": ...

    def for_case(self, case: str) -> "Engine": ...


class EngineError(Exception):
    """The engine cannot be built as asked (prompt mode, precision, missing graph)."""


def prompt_mode(model: str, requested: str | None, available: tuple[str, ...] | list[str]) -> str:
    """The prompt mode to run: `requested`, or the model's default (the first available one)."""
    if requested is None:
        return available[0]
    if requested not in available:
        raise EngineError(f"{model} takes prompts {', '.join(available)}, not {requested!r}")
    return requested


def feature_arrays(features: Features) -> "tuple[np.ndarray, ...]":
    return features if isinstance(features, tuple) else (features,)
