"""The shipping rule, as code: does a candidate model become the default, ship as a selectable model,
or not ship at all?

Both models are scored on the same cases (`cvpr24-format`) with the same pipeline and precision; the
inputs are their compute-metrics `summary.csv` tables (one row per modality group and the mean of group
means) and their mean seconds per case (the efficiency timer's `total`).

- default: mean-of-groups DSC at least the official model's + 0.04, mean-of-groups NSD at least the
  official model's + 0.03, no group's DSC lower than the official model's by more than 0.01, and time per
  case within 5 % of the official model's;
- selectable: short of that, but better overall: a higher mean-of-groups DSC and an NSD not lower;
- otherwise it does not ship.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from evaluation.leaderboard import OVERALL

DSC_GAIN = 0.04
NSD_GAIN = 0.03
GROUP_DSC_LOSS = 0.01
TIME_RATIO = 1.05

Summary = dict[str, tuple[float, float]]  # group (or OVERALL) -> (DSC, NSD)


@dataclass(frozen=True)
class Verdict:
    decision: str  # "default", "selectable" or "no"
    reasons: tuple[str, ...]  # every condition of the default rule that failed (empty for "default")


def read_summary(path: Path) -> Summary:
    """compute-metrics' summary.csv -> {group: (DSC, NSD)}, the OVERALL row included."""
    with open(path, newline="") as f:
        return summary_of(csv.DictReader(f))


def summary_of(rows: Iterable[dict[str, str]]) -> Summary:
    """The rows of a summary.csv (as a manifest also records them) -> {group: (DSC, NSD)}."""
    return {row["group"]: (float(row["dsc"]), float(row["nsd"])) for row in rows}


def decide(official: Summary, candidate: Summary, official_seconds: float, candidate_seconds: float) -> Verdict:
    """The verdict for `candidate` against `official` (both summaries of the same cases)."""
    (dsc, nsd), (base_dsc, base_nsd) = candidate[OVERALL], official[OVERALL]
    reasons = []
    if dsc < base_dsc + DSC_GAIN:
        reasons.append(f"mean DSC {dsc:.4f} < official {base_dsc:.4f} + {DSC_GAIN}")
    if nsd < base_nsd + NSD_GAIN:
        reasons.append(f"mean NSD {nsd:.4f} < official {base_nsd:.4f} + {NSD_GAIN}")
    for group, (group_dsc, _) in official.items():
        if group == OVERALL:
            continue
        if group not in candidate:
            reasons.append(f"{group} not scored")
        elif candidate[group][0] < group_dsc - GROUP_DSC_LOSS:
            reasons.append(f"{group} DSC {candidate[group][0]:.4f} < official {group_dsc:.4f} - {GROUP_DSC_LOSS}")
    if candidate_seconds > official_seconds * TIME_RATIO:
        reasons.append(f"{candidate_seconds:.2f} s per case > {TIME_RATIO} x official {official_seconds:.2f} s")
    if not reasons:
        return Verdict("default", ())
    return Verdict("selectable" if dsc > base_dsc and nsd >= base_nsd else "no", tuple(reasons))


def seconds_per_case(timer_csv: Path) -> float:
    """Mean `total` seconds of the efficiency timer's rows."""
    with open(timer_csv, newline="") as f:
        totals = [float(row["total"]) for row in csv.DictReader(f)]
    return sum(totals) / len(totals)
