"""OpenVINO's compiled-model cache, one namespace per graph and compile settings.

OpenVINO's own cache key ignores the precision hint, and importing a blob compiled for another hint
crashes the process; a cache folder OpenVINO cannot write crashes it too. So each graph gets a folder of
its own, named by its bytes, its compile settings and the OpenVINO version, and an unwritable cache is
skipped.
"""

import hashlib
import sys
from pathlib import Path

import openvino as ov

from ..io.atomic import check_writable
from .manifest import read_manifest
from .precision import int8_sha256s


def cache_namespace(model_dir: Path, graph: str, settings: str) -> str:
    """A folder name that changes with the graph's bytes, its compile settings (the precision hint, with
    "-fast-start" where that applies) and the OpenVINO version.

    The bytes are named by the sha256 the manifest (or int8.json) records for the .xml and .bin, or, for
    files no record names, by their sizes and modification times.
    """
    recorded = read_manifest(model_dir).get("files", {})
    recorded = recorded | int8_sha256s(model_dir)
    parts = []
    for name in (graph, Path(graph).with_suffix(".bin").name):
        if name in recorded:
            parts.append(recorded[name])
        else:
            stat = (model_dir / name).stat()
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("|".join([*parts, ov.__version__]).encode()).hexdigest()[:16]
    return f"{model_dir.name}-{Path(graph).stem}-{settings}-{digest}"


def usable_cache_dir(path: Path) -> bool:
    """Creates the cache folder if needed; a folder that cannot be written makes OpenVINO crash, so skip it."""
    try:
        check_writable(path)
        return True
    except OSError as err:
        print(f"warning: model cache {path} is not writable ({err}); compiling without a cache", file=sys.stderr)
        return False
