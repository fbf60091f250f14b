"""The shipping rule decides from two compute-metrics summaries and the time per case."""

import csv

from medsam_laptop.training.release.rule import decide, read_summary, seconds_per_case

OFFICIAL = {"2DBox_US": (0.84, 0.92), "3DBox_PET": (0.42, 0.23), "mean of group means": (0.63, 0.575)}


def _candidate(us: float, pet: float, nsd: float) -> dict:
    return {"2DBox_US": (us, 0.9), "3DBox_PET": (pet, 0.3), "mean of group means": ((us + pet) / 2, nsd)}


def test_a_clear_gain_in_time_becomes_the_default():
    verdict = decide(OFFICIAL, _candidate(0.84, 0.51, 0.61), 2.0, 2.09)
    assert verdict.decision == "default" and verdict.reasons == ()


def test_each_condition_of_the_default_can_fail_alone():
    cases = {  # condition: (candidate, seconds, decision); selectable needs a higher DSC and an NSD not lower
        "mean DSC": (_candidate(0.84, 0.48, 0.61), 2.0, "selectable"),  # +0.03 only
        "mean NSD": (_candidate(0.84, 0.51, 0.59), 2.0, "selectable"),  # +0.015 only
        "3DBox_PET DSC": (_candidate(0.95, 0.405, 0.61), 2.0, "selectable"),  # a gain elsewhere hides a loss
        "per case": (_candidate(0.84, 0.51, 0.61), 2.11, "selectable"),  # 5.5 % slower
    }
    for condition, (candidate, seconds, decision) in cases.items():
        verdict = decide(OFFICIAL, candidate, 2.0, seconds)
        assert verdict.decision == decision, condition
        assert len(verdict.reasons) == 1 and condition in verdict.reasons[0], (condition, verdict.reasons)


def test_worse_overall_does_not_ship_and_a_missing_group_counts():
    assert decide(OFFICIAL, _candidate(0.80, 0.42, 0.6), 2.0, 1.0).decision == "no"  # lower mean DSC
    assert decide(OFFICIAL, _candidate(0.86, 0.45, 0.55), 2.0, 1.0).decision == "no"  # lower NSD
    partial = {k: v for k, v in _candidate(0.90, 0.50, 0.61).items() if k != "3DBox_PET"}
    verdict = decide(OFFICIAL, partial, 2.0, 2.0)
    assert verdict.decision == "selectable" and verdict.reasons == ("3DBox_PET not scored",)


def test_reads_the_tables_compute_metrics_writes(tmp_path):
    summary = tmp_path / "summary.csv"
    with open(summary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "cases", "dsc", "nsd"])
        writer.writerows(
            [["2DBox_US", 2, 0.84, 0.92], ["3DBox_PET", 1, 0.42, 0.23], ["mean of group means", 3, 0.63, 0.575]]
        )
    assert read_summary(summary) == OFFICIAL
    timer = tmp_path / "efficiency_timer.csv"
    timer.write_text("case,status,total\na.npz,ok,1.5\nb.npz,ok,2.5\n")
    assert seconds_per_case(timer) == 2.0
