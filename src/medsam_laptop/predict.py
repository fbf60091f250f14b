"""The predict command: every case of a folder, one at a time, each failure confined to its case.

Start-up is ordered for speed: the inference backend is imported first and the model compiles in a
background thread while the segmentation code (and OpenCV with it) is imported.
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .cases import CaseError, list_cases, read_case, write_segs
from .timer import StageTimer, append_rows, case_row, interpreter_seconds, summary_line

if TYPE_CHECKING:
    from .segment import Engine


class UsageError(Exception):
    """A problem with the run as a whole (folders, weights), not with one case."""


@dataclass
class PredictOptions:
    input_dir: Path
    output_dir: Path
    model: str = "litemedsam"
    backend: str = "openvino"
    precision: str = "f32"
    threads: int = 0
    cache_dir: Path | None = None
    weights_dir: Path = Path("weights")
    timing_csv: Path | None = None
    prompts: str | None = None  # prompt mode (prompts.PROMPT_MODES); None: the model's default
    baseline: bool = False  # the organizers' manner: re-encode per box, one box per decoder call


def engine_factory(options: PredictOptions) -> Callable[[], "Engine"]:
    """Imports the backend (charged to start-up imports) and returns what builds the engine (compile)."""
    if options.backend == "torch":
        if options.model != "litemedsam":
            raise UsageError(f"the torch backend runs the bundled litemedsam only, not {options.model}")
        from .torch_backend import TorchEngine

        return lambda: TorchEngine(options.model, threads=options.threads, prompts=options.prompts)
    from .engine import OpenVINOEngine, decoder_specs, encoder_file_for

    model_dir = options.weights_dir / options.model
    if not (model_dir / "encoder.xml").is_file():
        hint = "" if options.model == "litemedsam" else " (convert its checkpoint with import-checkpoint)"
        raise UsageError(f"no OpenVINO IR for {options.model} in {model_dir}{hint}")
    if not (model_dir / encoder_file_for(options.precision)).is_file():
        raise UsageError(f"no INT8 encoder for {options.model} in {model_dir} (make it with the quantize command)")
    modes = decoder_specs(model_dir)
    if options.prompts is not None and options.prompts not in modes:
        raise UsageError(f"{options.model} takes prompts {', '.join(modes)}, not {options.prompts}")
    return lambda: OpenVINOEngine(model_dir, options.precision, options.threads, options.cache_dir, options.prompts)


def _check_folders(options: PredictOptions) -> None:
    if not options.input_dir.is_dir():
        raise UsageError(f"input folder {options.input_dir} does not exist")
    try:
        options.output_dir.mkdir(parents=True, exist_ok=True)
        probe = options.output_dir / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UsageError(f"output folder {options.output_dir} is not writable ({err.strerror})") from None


def run(options: PredictOptions, started: float) -> int:
    """Segments every case; returns the number of cases that failed."""
    _check_folders(options)
    paths = list_cases(options.input_dir)
    skipped = sum(1 for p in options.input_dir.iterdir() if p not in paths)
    if skipped:
        print(f"note: ignoring {skipped} entries of {options.input_dir} that are not .npz files", file=sys.stderr)
    if not paths:
        print(f"warning: no .npz cases in {options.input_dir}", file=sys.stderr)
        return 0

    build_engine = engine_factory(options)
    imports = time.perf_counter() - started
    startup = {"interpreter": max(0.0, interpreter_seconds() - imports), "imports": imports}
    compile_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        compiling = pool.submit(build_engine)
        from .segment import segment_2d, segment_2d_per_box, segment_3d, segment_3d_per_box

        engine = compiling.result()
    startup["compile"] = time.perf_counter() - compile_start  # includes the overlapped segment imports

    failed = 0
    for path in paths:
        timer = StageTimer()
        status = "ok"
        try:
            with timer.stage("read"):
                case = read_case(path)
            if len(case.boxes) == 0:
                print(f"warning: {path.name}: no boxes; writing an empty segmentation", file=sys.stderr)
            if options.baseline:
                segment = segment_3d_per_box if case.is_3d else segment_2d_per_box
            else:
                segment = segment_3d if case.is_3d else segment_2d
            segs = segment(engine, case.image, case.boxes, timer, case=path.name)
            with timer.stage("write"):
                write_segs(options.output_dir, path.name, segs)
        except (CaseError, MemoryError, OSError) as err:
            status, failed = "error", failed + 1
            print(f"error: {path.name}: {err}", file=sys.stderr)
        row = case_row(path.name, status, timer, startup)
        startup = {}
        if options.timing_csv is not None:
            append_rows(options.timing_csv, [row])
        print(summary_line(row), file=sys.stderr)
    print(f"done: {len(paths) - failed} of {len(paths)} cases segmented into {options.output_dir}", file=sys.stderr)
    return failed
