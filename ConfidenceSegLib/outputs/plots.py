"""Evaluation plots (PNG): risk-coverage curves, predicted vs true Dice, reliability diagram.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend change, so
this is safe inside 3D Slicer) and written atomically.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.safe_files import atomic_output
from ..quality.metrics import CalibrationBins

FIGURE_SIZE = (4.0, 3.6)
DPI = 110


def _save(figure: Figure, path: str | os.PathLike, overwrite: bool) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_output(path, overwrite) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)


def plot_risk_coverage(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str = "",
                       overwrite: bool = False) -> None:
    """One line per method: selective risk (1 - Dice) against coverage; the label should carry the AURC.

    ``curves``: label -> (coverage, risk), each of shape (n,) float64
    (:func:`~ConfidenceSegLib.quality.metrics.risk_coverage_curve`)."""
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    for label, (coverage, risk) in curves.items():
        axes.plot(coverage, risk, label=label, linewidth=1.5)
    axes.set(xlabel="coverage (fraction of cases accepted)", ylabel="selective risk (1 - Dice)",
             xlim=(0, 1), title=title)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    _save(figure, path, overwrite)


def plot_predicted_vs_true(predicted, true, lower_bounds, badges, path, threshold: float = 0.8,
                           title: str = "", overwrite: bool = False) -> None:
    """Scatter of predicted against true Dice (PASS green, REVIEW orange) with lower-bound whiskers."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    lower = np.asarray(lower_bounds, float)
    passed = np.array([badge == "PASS" for badge in badges], bool)
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    axes.vlines(true, lower, predicted, color="0.75", linewidth=0.6, label="lower bound .. predicted")
    for mask, color, label in ((passed, "tab:green", "PASS"), (~passed, "tab:orange", "REVIEW")):
        axes.scatter(true[mask], predicted[mask], s=12, color=color, label=f"{label} ({int(mask.sum())})")
    axes.plot([0, 1], [0, 1], color="0.4", linewidth=0.8, linestyle="--")
    axes.axvline(threshold, color="tab:red", linewidth=0.8, linestyle=":")
    axes.set(xlabel="true Dice", ylabel="predicted Dice", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    _save(figure, path, overwrite)


def plot_reliability(bins: CalibrationBins, path, title: str = "", overwrite: bool = False) -> None:
    """Observed foreground frequency against mean predicted probability per bin (diagonal = calibrated)."""
    edges = np.linspace(0, 1, bins.n_bins + 1)
    filled = bins.counts > 0
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    axes.bar(edges[:-1][filled], bins.observed_frequency()[filled], width=1 / bins.n_bins, align="edge",
             color="tab:blue", alpha=0.6, edgecolor="white", label="observed frequency")
    axes.plot(bins.mean_probability()[filled], bins.observed_frequency()[filled], "o", color="tab:blue",
              markersize=3)
    axes.plot([0, 1], [0, 1], color="0.4", linewidth=0.8, linestyle="--", label="perfect calibration")
    axes.set(xlabel="predicted probability", ylabel="observed foreground frequency", xlim=(0, 1), ylim=(0, 1),
             title=title)
    axes.legend(fontsize=7, loc="upper left")
    _save(figure, path, overwrite)
