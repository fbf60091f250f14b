"""Training configuration: one JSON file per stage, command-line overrides, and where the data lives.

Paths in a config may use `${MEDSAM_SHARED}` (`paths.shared_dir()`) and are otherwise taken relative
to the working directory. A training data folder in the evaluation set is refused, however it is reached
(`evaluation_guard.EvaluationSetError`).
"""

import json
from pathlib import Path
from typing import Any

from ..io.evaluation_guard import check_not_evaluation_set
from ..paths import shared_dir

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(Exception):
    """A config that cannot be used; the message says which key and why."""


def expand_path(value: str) -> Path:
    """A config path with `${MEDSAM_SHARED}` replaced."""
    return Path(value.replace("${MEDSAM_SHARED}", str(shared_dir())))


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
    """Parses "a.b=VALUE" -> ("a.b", VALUE parsed as JSON, or the raw string when it is not JSON)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def load_config(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Reads a stage's JSON config and applies dotted-key overrides (None values are skipped).

    Raises ConfigError for an unknown key, EvaluationSetError when `data_dir` is the evaluation set."""
    config = json.loads(path.read_text())
    for key, value in overrides.items():
        if value is not None:
            set_key(config, key, value)
    if "data_dir" in config:  # a decoder's config names feature caches, each checked when it is opened
        check_not_evaluation_set(expand_path(config["data_dir"]), "train")
    return config


def config_from_options(path: Path, options: dict[str, Any], assignments: list[str], stage: str) -> dict[str, Any]:
    """`load_config` with a command line's overrides: `options` (config key -> value, None when the option
    was not given) and `--set KEY=VALUE` assignments. Raises ConfigError also when the file configures
    another stage than `stage`."""
    config = load_config(path, options | dict(parse_assignment(text) for text in assignments))
    if config.get("stage") != stage:
        raise ConfigError(f"{path} is a {config.get('stage')} config, not {stage}")
    return config
