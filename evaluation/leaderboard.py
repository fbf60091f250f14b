"""Per-modality means and the leaderboard average (the unweighted mean of modality means)."""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from medsam_laptop.io.case_files import modality_group

OVERALL = "mean of group means"


@dataclass(frozen=True)
class GroupScore:
    """Mean scores of one modality group (or of all groups: ``group == OVERALL``)."""

    group: str
    cases: int
    dsc: float
    nsd: float


def summarize(scores: Iterable[tuple[str, float, float]]) -> list[GroupScore]:
    """Group means of per-case (case, dsc, nsd) scores, then the unweighted mean of group means.

    Per-case values are averaged as given (already rounded). A NaN case DSC is left out of its
    group's DSC mean, as pandas' ``mean`` does; a group whose DSCs are all NaN has a NaN mean.

    Returns:
        One GroupScore per group, sorted by name, then the OVERALL row (cases = all cases).
    """
    by_group: dict[str, list[tuple[float, float]]] = {}
    for case, dsc, nsd in scores:
        by_group.setdefault(modality_group(case), []).append((dsc, nsd))
    rows = [
        GroupScore(group, len(values), _mean([v[0] for v in values]), _mean([v[1] for v in values]))
        for group, values in sorted(by_group.items())
    ]
    total = sum(row.cases for row in rows)
    rows.append(GroupScore(OVERALL, total, _mean([r.dsc for r in rows]), _mean([r.nsd for r in rows])))
    return rows


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def to_markdown(rows: list[GroupScore], title: str | None = None) -> str:
    """Markdown table ``| group | cases | DSC | NSD |`` with 4 decimals (NaN shown as ``nan``)."""
    lines = [f"# {title}", ""] if title else []
    lines += ["| group | cases | DSC | NSD |", "|---|---|---|---|"]
    lines += [f"| {r.group} | {r.cases} | {r.dsc:.4f} | {r.nsd:.4f} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[GroupScore], path: str) -> None:
    """Bar chart of DSC and NSD per group (the OVERALL row last), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5))
    ax.bar(x - 0.2, [r.dsc for r in rows], width=0.4, label="DSC")
    ax.bar(x + 0.2, [r.nsd for r in rows], width=0.4, label="NSD")
    ax.set_xticks(x, [f"{r.group}\n(n={r.cases})" for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
