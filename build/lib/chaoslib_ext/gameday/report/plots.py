"""The report's figures, drawn with matplotlib's Agg backend (no display) and embedded as base64 PNG."""
from __future__ import annotations

import base64
import io
import textwrap
from dataclasses import dataclass

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


SHARE_SHOWN_UP_TO = 250.0
"""Percent of a budget the measurements plot shows; a point beyond it sits at the edge, its true share labelled."""


@dataclass(frozen=True)
class BudgetRow:
    """One measurement as percentages of its budget, or, without a budget, of its own largest value."""

    label: str
    samples: list[float]
    markers: dict[str, float]
    beyond: list[float]
    """True shares (percent) of the points drawn at the edge because they are over SHARE_SHOWN_UP_TO."""
    over_budget: bool | None
    note: str
    """The worst value as measured, written beside the row: shares alone hide a 5.7 s RTO at 0.6 %."""


def budget_rows(measurements: list[Measurement]) -> list[BudgetRow]:
    """Each measurement on one scale, a share of its budget in percent, so a 900 s RTO budget and a 10 s
    failover budget are read alike. A measurement without a budget is scaled to its own maximum (100 %)."""
    rows = []
    for m in measurements:
        values = [v for v in (m.p50, m.p95, m.max, *m.samples) if v is not None]
        if not values:
            continue
        if m.budget:
            unit, label = m.budget, f"{m.name[:44]} (budget {m.budget:g})"
        else:
            unit = max(abs(v) for v in values) or 1.0
            label = f"{m.name[:44]} (no budget; 100 % = {unit:g})"
        share = [v / unit * 100 for v in m.samples]
        markers = {name: v / unit * 100 for name, v in (("p50", m.p50), ("p95", m.p95), ("max", m.max))
                   if v is not None}
        beyond = sorted({round(v, 1) for v in (*share, *markers.values()) if v > SHARE_SHOWN_UP_TO})
        worst = ("p95", m.p95) if m.p95 is not None else ("max", m.max if m.max is not None else max(values))
        rows.append(BudgetRow(label, [min(v, SHARE_SHOWN_UP_TO) for v in share],
                              {k: min(v, SHARE_SHOWN_UP_TO) for k, v in markers.items()}, beyond,
                              None if not m.budget else m.within_budget is False, f"{worst[0]} {worst[1]:.3g}"))
    return rows


def measurements_against_budgets(measurements: list[Measurement]) -> str | None:
    """One row per measurement, as a share of its budget: its samples, p50/p95/max markers, and the budget at
    100 %."""
    rows = budget_rows(measurements)
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(9, 0.7 * len(rows) + 1.4))
    labelled: set[str] = set()

    def once(name: str) -> str | None:
        if name in labelled:
            return None
        labelled.add(name)
        return name

    for y, row in enumerate(rows):
        if row.samples:
            axis.scatter(row.samples, [y] * len(row.samples), color="#1f77b4", alpha=0.5, s=18, label=once("sample"))
        for name, marker in (("p50", "o"), ("p95", "s"), ("max", "^")):
            if name in row.markers:
                axis.scatter([row.markers[name]], [y], marker=marker, facecolors="none", edgecolors="black", s=60,
                             label=once(name))
        if row.over_budget is not None:
            axis.plot([100, 100], [y - 0.35, y + 0.35], color=FAULT_COLOUR if row.over_budget else "green",
                      linewidth=2.5, label=once("budget"))
        rightmost = max([*row.samples, *row.markers.values()])
        note = row.note + (f" ({row.beyond[-1]:g} %)" if row.beyond else "")
        axis.annotate(note, (rightmost, y), xytext=(6, 6), textcoords="offset points", fontsize=7,
                      color=FAULT_COLOUR if row.over_budget else "black", ha="right" if row.beyond else "left")
    axis.set_yticks(range(len(rows)), [row.label for row in rows], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("percent of the budget (without a budget: of the largest value)")
    right = max([v for row in rows for v in (*row.samples, *row.markers.values())] + [100.0])
    axis.set_xlim(0, min(right, SHARE_SHOWN_UP_TO) * 1.08)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.suptitle("Measurements as a share of their budgets (green: within, red: over)", fontsize=10)
    return _png(figure)
