"""PyTorch model definitions (export time only; the run time never imports torch)."""

from .build import (
    build_litemedsam,
    build_litemedsam_skip,
    build_swin_litemedsam,
    init_from_litemedsam,
    load_state_dict,
    model_registry,
    strip_unused_swin_keys,
)

__all__ = [
    "build_litemedsam",
    "build_litemedsam_skip",
    "build_swin_litemedsam",
    "init_from_litemedsam",
    "load_state_dict",
    "model_registry",
    "strip_unused_swin_keys",
]
