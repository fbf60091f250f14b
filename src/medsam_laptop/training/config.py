"""Training configuration: one JSON file per stage, command-line overrides, and where the data lives.

Paths in a config may use `${MEDSAM_SHARED}` (default: `shared/` beside the repository) and are
otherwise taken relative to the working directory. A training data folder named `cvpr24-format`
(the evaluation set) is refused, however it is reached.
"""
import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
EVALUATION_SET = "cvpr24-format"


class ConfigError(ValueError):
    """A config that cannot be used; the message says which key and why."""


def shared_dir() -> Path:
    """The shared data folder: $MEDSAM_SHARED, or `shared/` beside the repository."""
    return Path(os.environ.get("MEDSAM_SHARED", REPO.parent / "shared"))


def expand_path(value: str) -> Path:
    """A config path with `${MEDSAM_SHARED}` replaced."""
    return Path(value.replace("${MEDSAM_SHARED}", str(shared_dir())))


def check_training_data(path: Path) -> Path:
    """Returns `path` unless it is (or lies inside, or links to) the evaluation set; then ConfigError."""
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        if EVALUATION_SET in candidate.parts:
            raise ConfigError(f"refusing to train on {path}: {EVALUATION_SET} is the evaluation set")
    return path


def default_config(stage: str) -> Path:
    return CONFIG_DIR / f"{stage}.json"


def set_key(config: dict[str, Any], dotted: str, value: Any) -> None:
    """config["a"]["b"] = value for dotted = "a.b"; the key must exist already (typos are errors)."""
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key {dotted!r}")
        node = node[part]
    if last not in node:
        raise ConfigError(f"unknown config key {dotted!r}")
    node[last] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """"a.b=VALUE" -> ("a.b", VALUE parsed as JSON, or the raw string when it is not JSON)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def load_config(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Reads a stage's JSON config and applies dotted-key overrides (None values are skipped)."""
    config = json.loads(path.read_text())
    for key, value in overrides.items():
        if value is not None:
            set_key(config, key, value)
    check_training_data(expand_path(config["data_dir"]))
    return config
