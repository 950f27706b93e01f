"""The report's figures, drawn with matplotlib's Agg backend (no display) and embedded as base64 PNG."""
from __future__ import annotations

import base64
import io
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from chaoslib_ext.gameday.report.model import ExperimentEvidence, Measurement  # noqa: E402

FAULT_COLOUR = "#d62728"
MARGIN_SECONDS = 5.0


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sli_around_faults(experiment: ExperimentEvidence, objective: float | None) -> str | None:
    """Availability, p95 latency and the burn rate over the experiment, fault windows shaded. None without
    samples."""
    samples = experiment.sli
    if not samples:
        return None
    zero = experiment.started_at or samples[0]["at"]
    t = [s["at"] - zero for s in samples]
    figure, axes = plt.subplots(3 if objective else 2, 1, figsize=(9, 6.5 if objective else 4.8), sharex=True)
    series = [
        ("availability", "availability", lambda v: v * 100, "%"),
        ("latency_p95_s", "p95 latency", lambda v: v, "s"),
    ]
    for axis, (key, label, scale, unit) in zip(axes, series):
        points = [(x, scale(s[key])) for x, s in zip(t, samples) if isinstance(s.get(key), (int, float))]
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", linewidth=1.2)
        axis.set_ylabel(f"{label} ({unit})")
        axis.grid(alpha=0.3)
    if objective:
        axes[0].axhline(objective * 100, color="grey", linestyle="--", linewidth=1, label=f"objective {objective:.1%}")
        axes[0].legend(loc="lower left", fontsize=8)
        rates = [(x, max(0.0, 1 - s["availability"]) / (1 - objective)) for x, s in zip(t, samples)
                 if isinstance(s.get("availability"), (int, float))]
        if rates:
            axes[2].plot([r[0] for r in rates], [r[1] for r in rates], color="#ff7f0e", linewidth=1.2)
        axes[2].axhline(1.0, color="grey", linestyle="--", linewidth=1, label="burn rate 1 (budget spent exactly)")
        axes[2].set_ylabel("burn rate (x)")
        axes[2].legend(loc="upper left", fontsize=8)
        axes[2].grid(alpha=0.3)
    for window in experiment.faults:
        for axis in axes:
            axis.axvspan(window.start - zero, window.end - zero, color=FAULT_COLOUR, alpha=0.15)
        axes[0].annotate(window.label, (window.start - zero, 1.0), xycoords=("data", "axes fraction"),
                         fontsize=8, color=FAULT_COLOUR, va="bottom")
    axes[-1].set_xlabel("seconds since the experiment started (red: fault in force)")
    figure.suptitle("\n".join(textwrap.wrap(experiment.title, 100)[:2]), fontsize=10)
    return _png(figure)


def measurements_against_budgets(measurements: list[Measurement]) -> str | None:
    """One row per measurement: its samples, p50/p95/max markers, and its budget."""
    rows = [m for m in measurements if m.max is not None or m.samples]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(9, 0.7 * len(rows) + 1.4))
    for y, m in enumerate(rows):
        if m.samples:
            axis.scatter(m.samples, [y] * len(m.samples), color="#1f77b4", alpha=0.5, s=18,
                         label="sample" if y == 0 else None)
        for value, marker, name in ((m.p50, "o", "p50"), (m.p95, "s", "p95"), (m.max, "^", "max")):
            if value is not None:
                axis.scatter([value], [y], marker=marker, facecolors="none", edgecolors="black", s=60,
                             label=name if y == 0 else None)
        if m.budget is not None:
            over = m.within_budget is False
            axis.plot([m.budget, m.budget], [y - 0.35, y + 0.35], color=FAULT_COLOUR if over else "green",
                      linewidth=2.5, label="budget" if y == 0 else None)
    axis.set_yticks(range(len(rows)), [m.name[:48] for m in rows], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("seconds (or the probe's unit)")
    right = max([v for m in rows for v in (m.budget, m.max, *m.samples) if v is not None] or [1.0])
    axis.set_xlim(0, right * 1.08)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.suptitle("Measurements against their budgets (green: within, red: over)", fontsize=10)
    return _png(figure)
