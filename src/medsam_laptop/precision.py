"""Precision configurations, and the per-CPU choice behind `--precision auto`.

A configuration names the precision of each graph as ENCODER-DECODER: the encoder runs in f32, bf16 or
f16 (OpenVINO's inference precision hint on `encoder.xml`), or int8: the quantized `encoder-int8.xml`,
whose layers left unquantized run in f32 ("int8") or under another hint ("int8+bf16", "int8+f16"); the
decoder runs in f32, bf16 or f16. The single names are shorthands: f32 = f32-f32, bf16 = bf16-bf16,
f16 = f16-f16, int8 = int8-f32.

`auto` reads the CPU's class (`cpu_class`) and runs the fastest configuration that the model's record
(`weights/<model>/precision.json`) lists as having passed the accuracy gate on that class; f32 where none
has. The record is written from `benchmarks/precision.py --accuracy` runs; each entry keeps the figures and
the command that measured them.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

HINTS = ("f32", "bf16", "f16")
INT8 = "int8"
ENCODER_PRECISIONS = (*HINTS, INT8, *(f"{INT8}+{hint}" for hint in HINTS if hint != "f32"))
SHORTHANDS = {"f32": "f32-f32", "bf16": "bf16-bf16", "f16": "f16-f16", "int8": "int8-f32"}
AUTO = "auto"
RECORD_FILE = "precision.json"
INT8_RECORD_FILE = "int8.json"  # written by quantize.py
INT8_FILES = ("encoder-int8.xml", "encoder-int8.bin")

# CPU classes, most capable first; a CPU belongs to the first whose needs it meets.
CPU_CLASSES = {
    "amx": {"flags": {"amx_bf16", "amx_int8"}, "capabilities": {"BF16"}},
    "avx512-bf16": {"flags": {"avx512_bf16"}, "capabilities": {"BF16"}},
    "avx512": {"flags": {"avx512f"}, "capabilities": set()},
    "avx2": {"flags": {"avx2"}, "capabilities": set()},
}
OTHER_CPU = "other"
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_int8")


class PrecisionError(ValueError):
    """A precision name that is not a configuration."""


@dataclass(frozen=True)
class Configuration:
    encoder: str = "f32"
    decoder: str = "f32"

    @classmethod
    def parse(cls, text: str) -> "Configuration":
        """'int8-bf16', or a shorthand ('f32', 'bf16', 'f16', 'int8')."""
        encoder, _, decoder = SHORTHANDS.get(text, text).partition("-")
        if encoder not in ENCODER_PRECISIONS or decoder not in HINTS:
            names = ", ".join([*SHORTHANDS, AUTO])
            raise PrecisionError(
                f"precision {text!r} is not {names}, nor ENCODER-DECODER with the encoder in "
                f"{'/'.join(ENCODER_PRECISIONS)} and the decoder in {'/'.join(HINTS)}"
            )
        return cls(encoder, decoder)

    @property
    def name(self) -> str:
        return f"{self.encoder}-{self.decoder}"

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


def _cpuinfo_field(name: str, cpuinfo: Path) -> str | None:
    """The value of the first `name` line of /proc/cpuinfo (the first processor's), or None."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The ISA flags of the first processor (empty where /proc/cpuinfo cannot be read)."""
    return set((_cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    return _cpuinfo_field("model name", cpuinfo) or "unknown CPU"


def cpu_class(capabilities: set[str], flags: set[str]) -> str:
    """The class of a CPU from OpenVINO's OPTIMIZATION_CAPABILITIES and the ISA flags."""
    for name, needs in CPU_CLASSES.items():
        if needs["flags"] <= flags and needs["capabilities"] <= capabilities:
            return name
    return OTHER_CPU


def describe_cpu(capabilities: set[str], flags: set[str]) -> str:
    """One line for reports: model, class, the flags that decide precision, OpenVINO's capabilities."""
    shown = ", ".join(f for f in REPORTED_FLAGS if f in flags) or "none of " + ", ".join(REPORTED_FLAGS)
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, class `{cpu_class(capabilities, flags)}`; flags {shown}; "
        f"OpenVINO capabilities {', '.join(sorted(capabilities))}"
    )


def openvino_capabilities() -> set[str]:
    from .openvino_runtime import ov

    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


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


def choose(record: dict, cls: str, model_dir: Path | None = None) -> Configuration:
    """The fastest configuration that passed on this CPU class, else f32. With a model folder, only
    configurations whose files are there count, and an INT8 encoder only if the entry names its bytes
    (`int8_files`, equal to int8.json's sha256s): a pass measured on another quantization says nothing
    about this one."""
    for entry in passed_configurations(record, cls):
        config = Configuration.parse(entry["configuration"])
        if model_dir is None:
            return config
        if not (model_dir / config.encoder_file).is_file():
            continue
        if config.encoder_is_int8:
            measured = entry.get("int8_files")
            if not measured or measured != int8_sha256s(model_dir):
                continue
        return config
    return Configuration()


def resolve(
    text: str, model_dir: Path, capabilities: set[str] | None = None, flags: set[str] | None = None
) -> tuple[Configuration, str]:
    """A precision name (or auto) -> the configuration to run and how it was chosen, for the timer.

    capabilities and flags default to this machine's; tests inject them.
    """
    if text != AUTO:
        return Configuration.parse(text), text
    if capabilities is None:
        capabilities = openvino_capabilities()
    cls = cpu_class(capabilities, cpu_flags() if flags is None else flags)
    return choose(read_record(model_dir), cls, model_dir), f"auto on {cls}"
