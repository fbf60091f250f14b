"""The GPU recipe (medsam_laptop.training.swin.recipe): the step-count arithmetic on a fake clock, and the whole
recipe end to end on the CPU with a tiny budget on two small training cases (one without ground truth, so
that stage B draws pseudo-labels), each with its mirrored copy."""

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from medsam_laptop.inference.transforms import model_input  # noqa: E402
from medsam_laptop.io.cases import read_case  # noqa: E402
from medsam_laptop.modeling import build_swin_litemedsam  # noqa: E402
from medsam_laptop.training.cli import main as training_main  # noqa: E402
from medsam_laptop.training.config import default_config, load_config  # noqa: E402
from medsam_laptop.training.loop import lr_factor  # noqa: E402
from medsam_laptop.training.models import load_teacher  # noqa: E402
from medsam_laptop.training.swin import recipe  # noqa: E402
from medsam_laptop.training.swin.recipe import TimedSteps, planned_steps  # noqa: E402

LABELLED, UNLABELLED = "2DBox_US_stubus_17.npz", "2DBox_US_stubus_27.npz"  # 128 x 128 ultrasound images
BUDGET = 70.0  # seconds; on a busy 2-core machine the preparation takes ~15 s of it, a CPU step 5-9 s
SLACK = 15.0  # a step that ends past a stage's deadline, plus the final checkpoint


# --- the step-count arithmetic -------------------------------------------------------------------------------


def test_planned_steps_fill_the_time_left_at_the_measured_pace():
    assert planned_steps(done=10, elapsed=30.0, available=300.0, max_steps=10**6) == 100
    assert planned_steps(3, 1.0, 1.9999, 100) == 5  # rounded down: never past the deadline at that pace
    assert planned_steps(10, 30.0, 20.0, 10**6) == 10  # already late: the steps done
    assert planned_steps(10, 30.0, 300.0, 50) == 50  # the config's upper bound


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _steps(plan: TimedSteps, clock: FakeClock, times: list[float]) -> list[int]:
    """The plan's answers after steps 1, 2, ... ending at `times`."""
    answers = []
    for step, t in enumerate(times, start=1):
        clock.now = t
        answers.append(plan(step))
    return answers


def test_timed_steps_measure_then_fix_the_count_once_and_cut_at_the_deadline():
    clock = FakeClock()
    plan = TimedSteps(deadline=100.0, measure_seconds=30.0, warmup_steps=1000, max_steps=10**6, clock=clock)
    # 3 steps in 30 s: 10 in 100 s; step 5 ends past the deadline: the stage ends there
    assert _steps(plan, clock, [10.0, 20.0, 30.0, 40.0, 101.0]) == [10**6, 10**6, 10, 10, 5]
    assert plan.record() == {
        "steps": 5,
        "measured_steps": 3,
        "measured_seconds": 30.0,
        "seconds_per_step": 10.0,
        "available_seconds": 100.0,
        "cut_at_deadline": True,
    }


def test_timed_steps_settle_by_the_end_of_warmup_or_at_the_deadline():
    clock = FakeClock()
    plan = TimedSteps(deadline=100.0, measure_seconds=30.0, warmup_steps=2, max_steps=10**6, clock=clock)
    assert _steps(plan, clock, [5.0, 10.0]) == [10**6, 20]  # warm-up ends before 30 s: 2 steps in 10 s
    clock.now = 0.0
    late = TimedSteps(deadline=10.0, measure_seconds=30.0, warmup_steps=1000, max_steps=10**6, clock=clock)
    assert _steps(late, clock, [4.0, 12.0]) == [10**6, 2] and not late.cut


def test_bad_recipe_configs_exit_2(tmp_path):
    (tmp_path / "data" / "cvpr24-format" / "imgs").mkdir(parents=True)
    for argv in (
        ["--set", "distill_share=1.5"],
        ["--set", "finetune.optimizer.warmup_steps=0"],
        ["--set", "no_such_key=1"],
        ["--config", str(default_config("distill"))],
        ["--data-dir", str(tmp_path / "data" / "cvpr24-format")],
    ):
        assert training_main(["gpu-recipe", *argv]) == 2, argv


# --- end to end on the CPU --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_run(train_dir, official_checkpoint, tmp_path_factory) -> tuple[Path, dict, list, float]:
    """The recipe with BUDGET on the CPU, warm-up of one step in each stage; returns the output folder, its
    record, every image the teacher's encoder saw and the wall time of the call."""
    root = tmp_path_factory.mktemp("recipe")
    for sub, names in (("imgs", [LABELLED, UNLABELLED]), ("gts", [LABELLED])):
        (root / "data" / sub).mkdir(parents=True)
        for name in names:
            (root / "data" / sub / name).symlink_to(train_dir / sub / name)
    config = load_config(
        recipe.DEFAULT_CONFIG,
        {
            "data_dir": str(root / "data"), "output_dir": str(root / "run"), "device": "cpu", "amp": [],
            "budget_seconds": BUDGET, "reserve_seconds": 3, "measure_seconds": 1, "num_workers": 0,
            "prepare_batch_size": 2, "distill.batch_size": 1, "finetune.batch_size": 2,
            "distill.optimizer.warmup_steps": 1, "finetune.optimizer.warmup_steps": 1,
        },
    )  # fmt: skip
    seen: list[torch.Tensor] = []

    def counted_teacher(spec: str, device: torch.device):
        teacher = load_teacher(spec, device)
        encoder = teacher.image_encoder
        encoder.register_forward_hook(lambda _m, inputs, _out: seen.extend(inputs[0].clone()))
        with_stages = encoder.forward_with_stages  # the other way in, which forward hooks do not see

        def counted_with_stages(image: torch.Tensor):
            seen.extend(image.clone())
            return with_stages(image)

        encoder.forward_with_stages = counted_with_stages
        return teacher

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe, "load_teacher", counted_teacher)
        began = time.perf_counter()
        last = recipe.run_recipe(config, torch.device("cpu"))
        wall = time.perf_counter() - began
    out = root / "run"
    assert last == out / "finetune" / "last.pth"
    return out, json.loads((out / "recipe.json").read_text()), seen, wall


def _log(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("stage", ["distill", "finetune"])
def test_step_counts_come_from_the_measured_pace_and_the_schedule_uses_them(recipe_run, stage):
    out, record, _, _ = recipe_run
    run = record[stage]
    rows = _log(out / stage / "log.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, run["steps"] + 1))
    assert run["measured_steps"] == 1  # warm-up of one step: the count is fixed after step 1
    planned = planned_steps(run["measured_steps"], run["measured_seconds"], run["available_seconds"], 10**6)
    assert run["steps"] == planned or (run["cut_at_deadline"] and run["steps"] < planned), run
    assert run["steps"] >= 2, f"too slow a machine for this test: {run}"
    base = json.loads(recipe.DEFAULT_CONFIG.read_text())[stage]["param_groups"][0]["lr"]
    for row in rows:  # the measured step trained too, and the cosine ran to 0 at the final count
        assert float(row["lr"]) == pytest.approx(base * lr_factor(int(row["step"]), 1, run["steps"]), abs=1e-12)
    checkpoint = torch.load(out / stage / "last.pth", map_location="cpu", weights_only=True)
    assert checkpoint["step"] == run["steps"] == checkpoint["config"]["steps"]


def test_the_run_stays_within_the_budget(recipe_run):
    _, record, _, wall = recipe_run
    assert record["wall_seconds"] <= wall <= BUDGET + SLACK, (wall, record)
    parts = record["prepare_seconds"] + record["distill"]["seconds"] + record["finetune"]["seconds"]
    assert parts <= record["wall_seconds"]
    assert record["finetune"]["seconds"] <= record["finetune"]["available_seconds"] + SLACK
    assert record["device"] and record["budget_seconds"] == BUDGET


def test_the_teacher_encodes_each_distinct_input_once(recipe_run):
    out, record, seen, _ = recipe_run
    images = [read_case(out.parent / "data" / "imgs" / name).image for name in (LABELLED, UNLABELLED)]
    variants = images + [np.ascontiguousarray(image[:, ::-1]) for image in images]  # the mirrored copies follow
    assert record["items"] == len(seen) == 4
    for image, encoded in zip(variants, seen):
        np.testing.assert_array_equal(encoded.numpy(), model_input(image)[0])
    pseudo = [float(row["pseudo"]) for row in _log(out / "finetune" / "log.csv")]
    assert max(pseudo) > 0  # stage B drew pseudo-labels, from the held embeddings: no further encoder call


def test_the_final_checkpoint_loads_strictly_with_stage_a_encoder(recipe_run):
    out, record, _, _ = recipe_run
    assert record["checkpoint"] == str(out / "finetune" / "last.pth")
    final = build_swin_litemedsam(out / "finetune" / "last.pth").state_dict()
    encoder = torch.load(out / "distill" / "last.pth", map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(final[k], v) for k, v in encoder.items() if k.startswith("image_encoder."))
