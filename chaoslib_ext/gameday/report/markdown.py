"""A short Markdown summary for CI logs and job summaries."""
from __future__ import annotations

from chaoslib_ext.gameday.report.model import RunEvidence, burn


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_summary(evidence: RunEvidence, files: list[str] | None = None) -> str:
    outcome = evidence.outcome
    passed = sum(1 for e in evidence.experiments if e.verdict.outcome.name == "PASS")
    lines = [
        f"## Game day {evidence.root.name}: {outcome.name} (exit {outcome.exit_code})",
        "",
        f"{passed} of {len(evidence.experiments)} experiment(s) passed.",
        "",
        *[f"**Substitution in force:** {_cell(note)}" for note in evidence.substitutions],
        *([""] if evidence.substitutions else []),
        "| experiment | outcome | seconds | faults | reasons |",
        "|---|---|---:|---:|---|",
    ]
    for e in evidence.experiments:
        reasons = "; ".join(e.verdict.reasons) or "–"
        lines.append(f"| {_cell(e.name)} | {e.verdict.outcome.name} | {_seconds(e.duration)} | {len(e.faults)} "
                     f"| {_cell(reasons[:300])} |")
    if evidence.measurements:
        lines += ["", "| measurement | n | p50 | p95 | max | budget | within |", "|---|---:|---:|---:|---:|---:|---|"]
        for m in evidence.measurements:
            within = {True: "yes", False: "**NO**", None: "–"}[m.within_budget]
            lines.append(f"| {_cell(m.name)} | {len(m.samples) or '–'} | {_seconds(m.p50)} | {_seconds(m.p95)} "
                         f"| {_seconds(m.max)} | {_seconds(m.budget)} | {within} |")
    burns = [(e.name, burn(evidence, e)) for e in evidence.experiments]
    burns = [(name, b) for name, b in burns if b]
    if burns:
        lines += ["", "| experiment | peak burn rate | 30-day error budget consumed |", "|---|---:|---:|"]
        lines += [f"| {_cell(name)} | {b['peak_burn_rate']:.1f}x | {b['budget_consumed_pct']:.4f} % |"
                  for name, b in burns]
    if files:
        lines += ["", "Evidence: " + ", ".join(f"`{f}`" for f in files)]
    return "\n".join(lines) + "\n"
