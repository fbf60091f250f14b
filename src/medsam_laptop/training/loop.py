"""What both stages share: device, trainable parameter groups, learning-rate schedule, step-derived
batches, checkpoints in the Swin-LiteMedSAM authors' format, a progress bar and a CSV log of the losses.

A checkpoint is {"model": state_dict, "step", "epoch", "optimizer", "rng", "config"}; `build_swin_litemedsam`
loads its "model" strictly, and `--resume` restores model, optimizer, step and torch's RNG. Batches are a
function of (seed, step), so a resumed run sees the batches the uninterrupted run would have seen.
"""

import csv
import io
import sys
import time
from collections.abc import Callable, Iterator
from math import cos, pi
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..io.atomic import write_atomically
from .config import ConfigError

Batch = dict[str, torch.Tensor]
StepLosses = Callable[[Batch], dict[str, torch.Tensor]]  # batch -> named scalar losses, "loss" is optimised
StepPlan = Callable[[int], int]  # called after each step: step -> the run's step count from then on


def pick_device(name: str) -> torch.device:
    """The device: with "auto", CUDA when present, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def trainable_groups(model: nn.Module, groups: list[dict]) -> list[dict]:
    """Freezes every parameter, then unfreezes the parameters named by each config group
    ({"prefixes": [...], "lr": float}); returns the optimizer's parameter groups."""
    for p in model.parameters():
        p.requires_grad_(False)
    named = dict(model.named_parameters())
    result = []
    for group in groups:
        names = [n for n in named if n.startswith(tuple(group["prefixes"]))]
        if not names:
            raise ConfigError(f"parameter group {group['prefixes']} matches no parameter")
        if any(named[n].requires_grad for n in names):
            raise ConfigError(f"parameter group {group['prefixes']} overlaps an earlier group")
        for n in names:
            named[n].requires_grad_(True)
        result.append({"params": [named[n] for n in names], "lr": group["lr"], "base_lr": group["lr"]})
    return result


AMP_DEVICE_TYPES = ("cuda", "cpu")


def uses_amp(config: dict, device: torch.device) -> bool:
    """Whether to run under bf16 autocast: config["amp"] lists the device types to do so on ("cuda",
    "cpu"); on a CPU without bf16 instructions it is slower than float32. Raises ConfigError for a value
    that is not such a list."""
    amp = config["amp"]
    if not isinstance(amp, list) or any(t not in AMP_DEVICE_TYPES for t in amp):
        raise ConfigError(f'amp must list device types out of {AMP_DEVICE_TYPES}, e.g. ["cuda"], not {amp!r}')
    return device.type in amp


def set_train_mode(model: nn.Module) -> None:
    """Training mode (BatchNorm statistics) only for modules that own trainable parameters."""
    model.eval()
    for module in model.modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            module.train()


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total` (step counts from 1)."""
    if step <= warmup:
        return step / warmup
    return 0.5 * (1 + cos(pi * (step - warmup) / max(total - warmup, 1)))


def item_seed(seed: int, step: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1)[0])


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Batches of (index, item seed) for steps start+1..total. The p-th item drawn overall is entry
    p % n of epoch p // n's permutation (seeded by (seed, epoch)): every item once per epoch."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, total: int) -> None:
        self.n, self.batch_size, self.seed, self.start, self.total = n, batch_size, seed, start, total

    def __len__(self) -> int:
        return self.total - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start + 1, self.total + 1):
            batch = []
            for j in range(self.batch_size):
                epoch, offset = divmod((step - 1) * self.batch_size + j, self.n)
                index = int(np.random.default_rng([self.seed, epoch]).permutation(self.n)[offset])
                batch.append((index, item_seed(self.seed, step, j)))
            yield batch


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, epoch: int, config: dict
) -> None:
    """Writes the checkpoint through a temporary file, so an interrupted save leaves the old one."""
    checkpoint = {
        "model": model.state_dict(),
        "step": step,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
        "config": config,
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomically(path, buffer.getbuffer())


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restores model (strictly), optimizer and torch's RNG from `path`; returns the step it was saved at."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"], strict=True)
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    if checkpoint["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
    return int(checkpoint["step"])


class Progress:
    """One self-overwriting line on stderr: bar, step, loss, seconds per step, time left."""

    def __init__(self, label: str, total: int, start: int) -> None:
        self.label, self.total, self.start = label, total, start
        self.began = time.perf_counter()

    def update(self, step: int, loss: float) -> None:
        done = (step - self.start) / max(self.total - self.start, 1)
        per_step = (time.perf_counter() - self.began) / max(step - self.start, 1)
        left = int(per_step * (self.total - step))
        bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
        sys.stderr.write(
            f"\r{self.label} [{bar}] {step}/{self.total} loss {loss:.4g} {per_step:.2f} s/step "
            f"left {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        )
        if step == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class CsvLog:
    """log.csv: step, epoch, lr, seconds, then one column per loss. On resume into the same folder,
    rows after the checkpoint's step are dropped (they will be run again)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = reader.fieldnames
                rows = [row for row in reader if int(row["step"]) <= start]
            self._write_all(rows)

    def _write_all(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._write_all([])
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(row)


def fit(
    label: str,
    model: nn.Module,
    dataset: Dataset,
    step_losses: StepLosses,
    config: dict,
    device: torch.device,
    resume: Path | None,
    plan: StepPlan | None = None,
) -> Path:
    """Trains the parameter groups of config["param_groups"] for config["steps"] steps with AdamW;
    writes OUTPUT/last.pth every `save_every` steps and at the end (and step_NNNNNN.pth every
    `keep_every` steps when > 0), and OUTPUT/log.csv every step. Returns the path of last.pth.

    With `plan`, config["steps"] is an upper bound and the plan's answer after each step is the step
    count (the run ends when it is reached). The learning-rate schedule uses the count of the moment:
    a plan must settle it by the end of warm-up, before the cosine decay depends on it.
    """
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    opt = config["optimizer"]
    optimizer = torch.optim.AdamW(
        trainable_groups(model, config["param_groups"]), betas=tuple(opt["betas"]), weight_decay=opt["weight_decay"]
    )
    model.to(device)
    start = load_checkpoint(resume, model, optimizer) if resume else 0
    total, batch_size = config["steps"], config["batch_size"]
    loader = DataLoader(
        dataset,
        batch_sampler=StepBatches(len(dataset), batch_size, config["seed"], start, total),
        num_workers=config["num_workers"],
        pin_memory=device.type == "cuda",
    )
    log, progress = CsvLog(out / "log.csv", start), Progress(label, total, start)
    set_train_mode(model)
    use_amp = uses_amp(config, device)
    last = out / "last.pth"
    began = time.perf_counter()
    for step, batch in enumerate(loader, start=start + 1):
        factor = lr_factor(step, opt["warmup_steps"], total)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            losses = step_losses(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if opt["grad_clip"]:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], opt["grad_clip"])
        optimizer.step()
        now = time.perf_counter()
        epoch = step * batch_size // len(dataset)
        values = {k: float(v.detach()) for k, v in losses.items()}
        log.write(
            {"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "seconds": now - began, **values}
        )
        began = now
        if plan is not None and (planned := plan(step)) != total:
            total = progress.total = planned
            config = {**config, "steps": total}
        progress.update(step, values["loss"])
        if step % config["save_every"] == 0 or step == total:
            save_checkpoint(last, model, optimizer, step, epoch, config)
        if config["keep_every"] and step % config["keep_every"] == 0:
            save_checkpoint(out / f"step_{step:06d}.pth", model, optimizer, step, epoch, config)
        if step == total:
            break
    return last
