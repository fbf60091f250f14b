"""Faithful evaluation for the CVPR 2024 "Segment Anything in Medical Images on Laptop" challenge.

The metric modules (metrics, lookup_tables, compute_metrics, leaderboard) need only numpy and
scipy (matplotlib for the plot); convert needs nibabel. Run ``python -m evaluation --help``.
"""

from .metrics import MetricOptions, case_scores, dice, surface_dice, surface_distances

__all__ = ["MetricOptions", "case_scores", "dice", "surface_dice", "surface_distances"]
