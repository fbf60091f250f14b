"""The GPU recipe: Swin-LiteMedSAM's stage A then stage B in one command, inside a wall-clock budget
(configs/gpu-recipe.json: one H200 lent for 15 minutes in all, the command under 10 of them).

1. Every case is decoded once and held in memory; the model inputs of every item and of its mirrored
   copy (`flips`, data.py) go to the device as one tensor.
2. The teacher (LiteMedSAM's TinyViT) runs once over those inputs, under bf16 autocast on CUDA; its
   embeddings (and its stage outputs with distill.loss.match_stages) stay on the device. The price: the
   mirrored copies, each a distinct input with its own teacher output, are the only augmentation; the
   random flips and intensity changes of distill.json and finetune.json would invalidate those outputs.
3. Stage A trains on those inputs and outputs (no teacher, no data loading per step). Stage B builds its
   prompts in DataLoader workers from the cases in memory; its pseudo-labels decode the held embeddings.
4. Each stage runs through `loop.fit` with a `TimedSteps` plan: its pace over the first measure_seconds
   (set-up included; these steps train like the rest) fixes the step count that ends it by its deadline.

The budget counts from the start of 1. Its end less reserve_seconds (for stage B's final checkpoint and
the record) is stage B's deadline; stage A's is distill_share of the time from the end of 2 to there, so
stage B takes up stage A's error either way.

Writes OUTPUT/distill/, OUTPUT/finetune/ (last.pth: the final Swin-LiteMedSAM checkpoint, log.csv) and
OUTPUT/recipe.json (steps, measured pace and seconds per stage, wall time, device).

    python -m medsam_laptop.training gpu-recipe [--config CONFIG.json] [--budget-seconds S] [--device D]
        [--output-dir OUT] [--data-dir DATA] [--set KEY=VALUE]
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ...engines.cpu import cpu_model
from ...inference.transforms import MODEL_SIZE
from ...io.evaluation_guard import EvaluationSetError
from ..augment import Augmentation
from ..config import ConfigError, config_from_options, default_config, expand_path
from ..data import DistillDataset, IndexDataset, PromptDataset, PromptSampling
from ..loop import fit, pick_device, uses_amp
from ..models import build_student, load_teacher
from .distill import cached_distill_losses, teacher_outputs
from .finetune import finetune_losses

DEFAULT_CONFIG = default_config("gpu-recipe")
STAGES = ("distill", "finetune")
OVERRIDES = {  # option -> config key
    "budget_seconds": "budget_seconds",
    "device": "device",
    "output_dir": "output_dir",
    "data_dir": "data_dir",
}


def planned_steps(done: int, elapsed: float, available: float, max_steps: int) -> int:
    """The step count that fills `available` seconds at the pace of `done` steps in `elapsed` seconds;
    at least `done`, at most `max_steps`."""
    return max(done, min(max_steps, int(done * available / elapsed)))


class TimedSteps:
    """A `loop.StepPlan` that ends a stage by `deadline` (a time of `clock`), timed from its creation.

    Until measure_seconds have passed, the end of warm-up is reached or the deadline is, it answers
    max_steps; then it fixes the count once (`planned_steps`), so the cosine decay after warm-up uses the
    final count. A step that still ends past the deadline ends the stage there (`cut`)."""

    def __init__(
        self,
        deadline: float,
        measure_seconds: float,
        warmup_steps: int,
        max_steps: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.deadline = deadline
        self.measure_seconds = measure_seconds
        self.warmup_steps = warmup_steps
        self.max_steps = max_steps
        self.clock = clock
        self.began = clock()
        self.step, self.elapsed = 0, 0.0  # after the last step
        self.total: int | None = None
        self.measured: tuple[int, float] | None = None  # (steps, seconds) the count was fixed from
        self.cut = False

    def __call__(self, step: int) -> int:
        now = self.clock()
        self.step, self.elapsed = step, now - self.began
        if self.total is None:
            if self.elapsed < self.measure_seconds and step < self.warmup_steps and now < self.deadline:
                return self.max_steps
            self.measured = (step, self.elapsed)
            self.total = planned_steps(step, self.elapsed, self.deadline - self.began, self.max_steps)
        if now >= self.deadline and step < self.total:
            self.total, self.cut = step, True
        return self.total

    def record(self) -> dict:
        steps, seconds = self.measured or (self.step, self.elapsed)  # max_steps ran out before the count was fixed
        return {
            "steps": self.step,
            "measured_steps": steps,
            "measured_seconds": seconds,
            "seconds_per_step": seconds / max(steps, 1),
            "available_seconds": self.deadline - self.began,
            "cut_at_deadline": self.cut,
        }


def check_recipe(config: dict) -> None:
    """Raises ConfigError for a split outside (0, 1) or a stage without warm-up (its first step would run
    on the cosine of the provisional step count)."""
    if not 0 < config["distill_share"] < 1:
        raise ConfigError(f"distill_share must lie in (0, 1), not {config['distill_share']}")
    for stage in STAGES:
        if config[stage]["optimizer"]["warmup_steps"] < 1:
            raise ConfigError(f"{stage}.optimizer.warmup_steps must be at least 1")


def stage_config(config: dict, stage: str) -> dict:
    """The `loop.fit` config of one stage: the recipe's section for it over the keys the stages share."""
    shared = {key: config[key] for key in ("data_dir", "teacher", "device", "amp", "num_workers")}
    return {**shared, **config[stage], "stage": stage, "output_dir": str(Path(config["output_dir"]) / stage)}


def device_inputs(dataset: DistillDataset, device: torch.device, batch_size: int, num_workers: int) -> torch.Tensor:
    """Every item's model input, preprocessed in DataLoader workers -> (N, 3, 256, 256) float32 on `device`."""
    n = len(dataset)
    batches = [[(i, 0) for i in range(begin, min(begin + batch_size, n))] for begin in range(0, n, batch_size)]
    inputs = torch.empty((n, 3, MODEL_SIZE, MODEL_SIZE), device=device)
    for rows, batch in zip(batches, DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)):
        inputs[rows[0][0] : rows[-1][0] + 1] = batch["image"].to(device)
    return inputs


def plan_keys(config: dict, stage: dict) -> tuple[float, int, int]:
    """A stage's TimedSteps arguments after the deadline: measure_seconds, warm-up steps, max steps."""
    return config["measure_seconds"], stage["optimizer"]["warmup_steps"], stage["steps"]


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def run_recipe(config: dict, device: torch.device) -> Path:
    """Stage A then stage B within config["budget_seconds"] from this call (see the module docstring);
    returns the path of the final checkpoint (stage B's last.pth)."""
    began = time.perf_counter()
    check_recipe(config)
    end = began + config["budget_seconds"] - config["reserve_seconds"]
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    amp = uses_amp(config, device)
    distill, finetune = (stage_config(config, stage) for stage in STAGES)

    teacher = load_teacher(config["teacher"], device)
    data_dir = expand_path(config["data_dir"])
    images = DistillDataset(data_dir, Augmentation.off(), config["flips"])
    images.hold_in_memory()
    inputs = device_inputs(images, device, config["prepare_batch_size"], config["num_workers"])
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        t_embeddings, t_stages = teacher_outputs(
            teacher.image_encoder,
            inputs,
            config["prepare_batch_size"],
            distill["loss"]["match_stages"],
            torch.bfloat16 if amp else torch.float32,
        )
    prepared = time.perf_counter()
    print(f"{len(images)} inputs and their teacher outputs on {device} in {prepared - began:.1f} s", file=sys.stderr)

    student = build_student(config["teacher"], distill["seed"])
    plans = {"distill": TimedSteps(prepared + config["distill_share"] * (end - prepared), *plan_keys(config, distill))}
    step_losses = cached_distill_losses(student.image_encoder, inputs, t_embeddings, t_stages, distill["loss"])
    encoder = fit("distill", student, IndexDataset(len(inputs)), step_losses, distill, device, None, plans["distill"])
    ended = {"distill": time.perf_counter()}
    del student, step_losses, inputs, t_stages  # stage B needs only the teacher's embeddings

    model = build_student(config["teacher"], finetune["seed"], encoder)
    plans["finetune"] = TimedSteps(end, *plan_keys(config, finetune))
    sampling = finetune["prompts"]
    prompts = PromptDataset(
        data_dir,
        Augmentation.off(),
        PromptSampling(sampling["with_prompts"], sampling["prior_box"], tuple(sampling["random_box_size"])),
        config["flips"],
    )
    prompts.held = images.held  # the same folder's cases, decoded once
    step_losses = finetune_losses(model, teacher, finetune["loss"], t_embeddings)
    last = fit("finetune", model, prompts, step_losses, finetune, device, None, plans["finetune"])
    ended["finetune"] = time.perf_counter()

    record = {
        "device": device_name(device),
        "budget_seconds": config["budget_seconds"],
        "reserve_seconds": config["reserve_seconds"],
        "items": len(images),
        "prepare_seconds": prepared - began,
        **{stage: {**plan.record(), "seconds": ended[stage] - plan.began} for stage, plan in plans.items()},
        "checkpoint": str(last),
        "wall_seconds": time.perf_counter() - began,
    }
    (out / "recipe.json").write_text(json.dumps(record, indent=2) + "\n")
    return last


def recipe_main(args: argparse.Namespace) -> int:
    """Runs `gpu-recipe` from parsed arguments; prints the final checkpoint's path. Exit 2 on a bad config."""
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {key: getattr(args, option) for option, key in OVERRIDES.items()}
    try:
        config = config_from_options(args.config, options, args.set, "gpu-recipe")
        check_recipe(config)
    except (ConfigError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(run_recipe(config, pick_device(config["device"])))
    return 0
