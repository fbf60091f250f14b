"""Precision configurations, and the per-CPU choice behind `--precision auto`.

A configuration names the precision of each graph as ENCODER-DECODER: the encoder runs in f32, bf16 or
f16 (OpenVINO's inference precision hint on `encoder.xml`), or int8: the quantized `encoder-int8.xml`,
whose layers left unquantized run in f32 ("int8") or under another hint ("int8+bf16", "int8+f16"); the
decoder runs in f32, bf16 or f16. The single names are shorthands: f32 = f32-f32, bf16 = bf16-bf16,
f16 = f16-f16, int8 = int8-f32.

A configuration may end in ":fast-start": both graphs are compiled with OpenVINO's snippets (its fused,
JIT-generated subgraphs) off. Loading them from the cache then takes less time, every decoder call less
and every encoder call more (docs/startup.md), so it pays only in a process that calls the encoder a few
times: a lone 2D case, as in the organizers' harness. Its outputs differ in the last bits, so it passes
the gate on its own or not at all.

`auto` reads the CPU's class (`cpu.cpu_class`) and runs the fastest configuration that the model's record
(`weights/<model>/precision.json`) lists as having passed the accuracy gate on that class; f32 where none
has. For a run of few encoder calls (`FAST_START_MAX_CASES` 2D cases or fewer, no 3D case) it takes that
configuration's fast-start variant instead, where the record says it passed too. The record is written
from `benchmarks/precision.py --accuracy` runs; each entry keeps the figures and the command that
measured them.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

from .cpu import cpu_class, cpu_flags, openvino_capabilities

HINTS = ("f32", "bf16", "f16")
INT8 = "int8"
ENCODER_PRECISIONS = (*HINTS, INT8, *(f"{INT8}+{hint}" for hint in HINTS if hint != "f32"))
SHORTHANDS = {"f32": "f32-f32", "bf16": "bf16-bf16", "f16": "f16-f16", "int8": "int8-f32"}
AUTO = "auto"
FAST_START = "fast-start"
FAST_START_MAX_CASES = 6  # up to this many 2D cases (one encoder call each) make a short run: the fast start
# (its break-even is in docs/startup.md) and startup.py
RECORD_FILE = "precision.json"
INT8_RECORD_FILE = "int8.json"  # written by quantize.py
INT8_FILES = ("encoder-int8.xml", "encoder-int8.bin")


class PrecisionError(Exception):
    """A precision name that is not a configuration."""


@dataclass(frozen=True)
class Configuration:
    encoder: str = "f32"
    decoder: str = "f32"
    fast_start: bool = False

    @classmethod
    def parse(cls, text: str) -> "Configuration":
        """'int8-bf16', or a shorthand ('f32', 'bf16', 'f16', 'int8'); either may end in ':fast-start'."""
        base, colon, variant = text.partition(":")
        encoder, _, decoder = SHORTHANDS.get(base, base).partition("-")
        if encoder not in ENCODER_PRECISIONS or decoder not in HINTS or (colon and variant != FAST_START):
            names = ", ".join([*SHORTHANDS, AUTO])
            raise PrecisionError(
                f"precision {text!r} is not {names}, nor ENCODER-DECODER with the encoder in "
                f"{'/'.join(ENCODER_PRECISIONS)} and the decoder in {'/'.join(HINTS)}, "
                f"either optionally followed by :{FAST_START}"
            )
        return cls(encoder, decoder, variant == FAST_START)

    @property
    def name(self) -> str:
        return f"{self.encoder}-{self.decoder}" + (f":{FAST_START}" if self.fast_start else "")

    @property
    def compile_options(self) -> dict:
        """OpenVINO settings of both graphs' compilation beyond their precision hints."""
        return {"SNIPPETS_MODE": "DISABLE"} if self.fast_start else {}

    @property
    def encoder_is_int8(self) -> bool:
        return self.encoder.startswith(INT8)

    @property
    def encoder_file(self) -> str:
        return INT8_FILES[0] if self.encoder_is_int8 else "encoder.xml"

    @property
    def encoder_hint(self) -> str:
        if self.encoder_is_int8:
            return self.encoder.partition("+")[2] or "f32"
        return self.encoder

    @property
    def decoder_hint(self) -> str:
        return self.decoder


def read_record(model_dir: Path) -> dict:
    """The model's precision record, or an empty one."""
    path = model_dir / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else {"classes": {}}


def passed_configurations(record: dict, cls: str) -> list[dict]:
    """The record's entries for a CPU class that passed the gate, fastest first (seconds for one box)."""
    entries = record.get("classes", {}).get(cls, {}).get("configurations", [])
    passed = [e for e in entries if e["gate"]["passed"]]
    return sorted(passed, key=lambda e: e["speed"]["encode_s"] + e["speed"]["decode_s_per_box"])


def int8_sha256s(model_dir: Path) -> dict[str, str]:
    """INT8_FILES' sha256s as the folder's int8.json records them; empty without one."""
    path = model_dir / INT8_RECORD_FILE
    return json.loads(path.read_text()).get("files", {}) if path.is_file() else {}


def choose(record: dict, cls: str, model_dir: Path | None = None, few_encoder_calls: bool = False) -> Configuration:
    """The fastest configuration that passed on this CPU class, else f32; with `few_encoder_calls`, its
    fast-start variant where that passed too. With a model folder, only configurations whose files are
    there count, and an INT8 encoder only if the entry names its bytes (`int8_files`, equal to int8.json's
    sha256s): a pass measured on another quantization says nothing about this one."""
    usable = [
        Configuration.parse(entry["configuration"])
        for entry in passed_configurations(record, cls)
        if model_dir is None or _files_measured(entry, model_dir)
    ]
    fastest = next((c for c in usable if not c.fast_start), Configuration())
    variant = replace(fastest, fast_start=True)
    return variant if few_encoder_calls and variant in usable else fastest


def _files_measured(entry: dict, model_dir: Path) -> bool:
    """Whether the folder holds the encoder an entry was measured on."""
    config = Configuration.parse(entry["configuration"])
    if not (model_dir / config.encoder_file).is_file():
        return False
    if not config.encoder_is_int8:
        return True
    measured = entry.get("int8_files")
    return bool(measured) and measured == int8_sha256s(model_dir)


def resolve(
    text: str,
    model_dir: Path,
    capabilities: set[str] | None = None,
    flags: set[str] | None = None,
    few_encoder_calls: bool = False,
) -> tuple[Configuration, str]:
    """A precision name (or auto) -> the configuration to run and how it was chosen, for the timer.

    capabilities and flags default to this machine's; tests inject them. few_encoder_calls: the run will
    call the encoder a few times only (see `FAST_START_MAX_CASES`).
    """
    if text != AUTO:
        return Configuration.parse(text), text
    if capabilities is None:
        capabilities = openvino_capabilities()
    cls = cpu_class(capabilities, cpu_flags() if flags is None else flags)
    return choose(read_record(model_dir), cls, model_dir, few_encoder_calls), f"auto on {cls}"
