"""PyTorch model definitions (export time only; the run time never imports torch)."""
from .build import build_litemedsam, load_state_dict, model_registry

__all__ = ["build_litemedsam", "load_state_dict", "model_registry"]
