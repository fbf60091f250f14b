"""The predict command: every case of a folder, one at a time, each failure confined to its case.

A case fails alone: unreadable or invalid input, no memory, or an output that cannot be written (a full
disk) is one `error:` line and the next case goes on. A timer row that cannot be written is a warning.
Every file is written whole or not at all.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..architectures import DEFAULT_MODEL, OFFICIAL_MODEL
from ..engines.contract import Engine, EngineError
from ..engines.precision import AUTO, PrecisionError, resolve
from ..io.atomic import check_writable, remove_stale_temporaries
from ..io.case_files import few_encoder_calls, list_cases
from ..io.cases import CaseError, read_case, write_segs
from ..paths import default_weights_dir
from .segment import segment_2d, segment_2d_per_box, segment_3d, segment_3d_per_box
from .timer import StageTimer, TimerFileError, append_rows, case_row, interpreter_seconds, summary_line


class UsageError(Exception):
    """A problem with the run as a whole (folders, weights, options), not with one case."""


@dataclass
class PredictOptions:
    input_dir: Path
    output_dir: Path
    model: str = DEFAULT_MODEL
    backend: str = "openvino"
    precision: str = "f32"  # a precision.Configuration name, a shorthand, or "auto"
    threads: int = 0
    cache_dir: Path | None = None
    weights_dir: Path | None = None  # None: paths.default_weights_dir()
    timing_csv: Path | None = None
    prompts: str | None = None  # prompt mode (contract.PROMPT_MODES); None: the model's default
    baseline: bool = False  # the organizers' manner: re-encode per box, one box per decoder call


def engine_factory(options: PredictOptions, paths: list[Path]) -> tuple[Callable[[], Engine], str]:
    """Imports the backend (charged to start-up imports); returns what builds the engine (compile) and the
    name of the configuration it runs, for the timer. `paths` are the cases to segment."""
    if options.backend == "torch":
        if options.model != OFFICIAL_MODEL or options.precision not in (AUTO, "f32"):
            raise UsageError(
                f"the torch backend runs the bundled {OFFICIAL_MODEL} in f32 only: --model {OFFICIAL_MODEL}"
            )
        from ..engines.torch_engine import TorchEngine

        return lambda: TorchEngine(options.model, threads=options.threads, prompts=options.prompts), "torch f32"
    from ..engines.openvino_engine import OpenVINOEngine

    model_dir = (options.weights_dir or default_weights_dir()) / options.model
    try:
        few_calls = not options.baseline and few_encoder_calls(paths)  # the baseline encodes once per box
        configuration, chosen = resolve(options.precision, model_dir, few_encoder_calls=few_calls)
    except PrecisionError as err:
        raise UsageError(str(err)) from None
    name = f"{options.model} {configuration.name}" + (f" ({chosen})" if options.precision == AUTO else "")
    build = lambda: OpenVINOEngine(model_dir, configuration, options.threads, options.cache_dir, options.prompts)
    return build, name


def _check_folders(options: PredictOptions) -> None:
    if not options.input_dir.is_dir():
        raise UsageError(f"input folder {options.input_dir} does not exist")
    try:
        check_writable(options.output_dir)
        remove_stale_temporaries(options.output_dir)
    except OSError as err:
        raise UsageError(f"output folder {options.output_dir} is not writable ({err.strerror})") from None


def run(options: PredictOptions, started: float) -> int:
    """Segments every case; returns the number of cases that failed."""
    _check_folders(options)
    try:
        paths = list_cases(options.input_dir)
        skipped = sum(1 for p in options.input_dir.iterdir() if p not in paths)
    except OSError as err:
        raise UsageError(f"input folder {options.input_dir} cannot be read ({err.strerror})") from None
    if skipped:
        print(f"note: ignoring {skipped} entries of {options.input_dir} that are not .npz files", file=sys.stderr)
    if not paths:
        print(f"warning: no .npz cases in {options.input_dir}", file=sys.stderr)
        return 0

    build_engine, configuration = engine_factory(options, paths)
    imports = time.perf_counter() - started
    startup = {"interpreter": max(0.0, interpreter_seconds() - imports), "imports": imports}
    compile_start = time.perf_counter()
    try:
        engine = build_engine()
    except EngineError as err:
        raise UsageError(str(err)) from None
    startup["compile"] = time.perf_counter() - compile_start
    by_box = options.baseline  # the organizers' manner: every slice encoded again for every box
    segment_case_2d, segment_case_3d = (segment_2d_per_box, segment_3d_per_box) if by_box else (segment_2d, segment_3d)

    failed = []
    for path in paths:
        timer = StageTimer()
        status = "ok"
        try:
            with timer.stage("read"):
                case = read_case(path)
            if len(case.boxes) == 0:
                print(f"warning: {path.name}: no boxes; writing an empty segmentation", file=sys.stderr)
            segment_case = segment_case_3d if case.is_3d else segment_case_2d
            segs = segment_case(engine.for_case(path.name), case.image, case.boxes, timer, case=path.name)
            with timer.stage("write"):
                write_segs(options.output_dir, path.name, segs)
        except (CaseError, MemoryError, OSError) as err:
            status = "error"
            failed.append(path.name)
            print(f"error: {path.name}: {err}", file=sys.stderr)
        row = case_row(path.name, status, configuration, timer, startup)
        startup = {}
        if options.timing_csv is not None:
            try:
                append_rows(options.timing_csv, [row])
            except (OSError, TimerFileError) as err:
                print(f"warning: {path.name}: timer row not written to {options.timing_csv} ({err})", file=sys.stderr)
        print(summary_line(row), file=sys.stderr)
    print(
        f"done: {len(paths) - len(failed)} of {len(paths)} cases segmented into {options.output_dir}", file=sys.stderr
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return len(failed)
