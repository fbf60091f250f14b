"""The CPU this process runs on, as the precision choice sees it: its ISA flags and model name from
/proc/cpuinfo, OpenVINO's optimization capabilities, and the class they put it in (`CPU_CLASSES`).

Code that chooses by CPU takes flags and capabilities as arguments, so tests inject them.
"""

import os
from pathlib import Path

# CPU classes, most capable first; a CPU belongs to the first whose needs it meets.
CPU_CLASSES = {
    "amx": {"flags": {"amx_bf16", "amx_int8"}, "capabilities": {"BF16"}},
    "avx512-bf16": {"flags": {"avx512_bf16"}, "capabilities": {"BF16"}},
    "avx512": {"flags": {"avx512f"}, "capabilities": set()},
    "avx2": {"flags": {"avx2"}, "capabilities": set()},
}
OTHER_CPU = "other"
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_int8")


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
    import openvino as ov

    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
