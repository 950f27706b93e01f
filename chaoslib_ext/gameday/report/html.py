"""The self-contained HTML evidence bundle: inline CSS, figures as data: URIs, nothing fetched."""
from __future__ import annotations

import time
from html import escape

from chaoslib_ext.gameday.report.model import ExperimentEvidence, RunEvidence, burn

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.PASS{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
tr.fault td{background:#fdecea}tr.heal td{background:#e8f5e9}tr.alert td{background:#fff8e1}
tr.safeguard td{background:#f3e5f5}tr.rollback td{background:#e3f2fd}
code{font-size:.8rem;word-break:break-all}img{max-width:100%}
"""


def _outcome(name: str) -> str:
    return f'<span class="{"PASS" if name == "PASS" else "bad"}">{escape(name)}</span>'


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


NO_PLOTS = "plots need the report extra: pip install 'chaos-dr-verify[report]'"


def _plot(name: str, *args: object) -> str | None:
    """A figure from chaoslib_ext.gameday.report.plots; NO_PLOTS when matplotlib (the report extra) is missing."""
    try:
        from chaoslib_ext.gameday.report import plots
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib" and not str(exc.name).startswith("matplotlib."):
            raise
        return NO_PLOTS
    return getattr(plots, name)(*args)


def _image(png: str | None, alt: str) -> str:
    if png is None:
        return f"<p><em>{escape(alt)}: no data.</em></p>"
    if png == NO_PLOTS:
        return f"<p><em>{escape(alt)}: {escape(NO_PLOTS)}.</em></p>"
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{png}">'


def _timeline(experiment: ExperimentEvidence) -> str:
    zero = experiment.started_at or (experiment.events[0].at if experiment.events else 0.0)
    rows = [
        f'<tr class="{escape(e.category)}"><td class="num">{e.at - zero:+.2f}</td>'
        f"<td>{time.strftime('%H:%M:%S', time.gmtime(e.at))}</td><td>{escape(e.category)}</td>"
        f"<td>{escape(e.kind)}</td><td><code>{escape(e.detail)}</code></td></tr>"
        for e in experiment.events
    ]
    return ('<table class="timeline"><tr><th>t (s)</th><th>UTC</th><th>category</th><th>event</th><th>detail</th>'
            "</tr>" + "".join(rows) + "</table>")


def _experiment(evidence: RunEvidence, experiment: ExperimentEvidence) -> str:
    v = experiment.verdict
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v.reasons)
    probes = "".join(
        f"<tr><td>{escape(p.phase)}</td><td>{escape(p.name)}</td><td>{escape(p.status)}</td>"
        f"<td>{_outcome('PASS' if p.met and p.status == 'succeeded' else 'FAIL')}</td>"
        f"<td><code>{escape(str(p.output))[:300]}</code></td><td><code>{escape(str(p.tolerance))}</code></td></tr>"
        for p in v.probes
    )
    budget = burn(evidence, experiment)
    burn_text = (f"<p>Error budget: peak burn rate <b>{budget['peak_burn_rate']:.1f}x</b>; this experiment consumed "
                 f"<b>{budget['budget_consumed_pct']:.4f} %</b> of the 30-day budget "
                 f"({budget['seconds_sampled']:.0f} s sampled).</p>" if budget else
                 "<p><em>Error budget burn: no SLI samples for this experiment.</em></p>")
    faults = "".join(f"<li>{escape(w.label)}: {w.end - w.start:.1f} s</li>" for w in experiment.faults)
    return f"""
<h2 id="{escape(experiment.name)}">{escape(experiment.name)}: {_outcome(v.outcome.name)}</h2>
<p>{escape(experiment.title)}<br>status <code>{escape(str(experiment.journal.get('status')))}</code>,
{_num(experiment.duration, 1)} s, exit code {v.outcome.exit_code}</p>
{f'<ul>{reasons}</ul>' if reasons else ''}
<h3>Faults</h3>{f'<ul>{faults}</ul>' if faults else '<p><em>none recorded</em></p>'}
<h3>SLIs around the faults</h3>{_image(_plot('sli_around_faults', experiment, evidence.objective), 'SLIs around the faults')}
{burn_text}
<h3>Steady-state probes</h3>
<table><tr><th>phase</th><th>probe</th><th>status</th><th>verdict</th><th>output</th><th>tolerance</th></tr>{probes}</table>
<h3>Timeline</h3>{_timeline(experiment)}
"""


def html_report(evidence: RunEvidence, files: list[str]) -> str:
    outcome = evidence.outcome
    summary = "".join(
        f'<tr><td><a href="#{escape(e.name)}">{escape(e.name)}</a></td><td>{_outcome(e.verdict.outcome.name)}</td>'
        f'<td class="num">{_num(e.duration, 1)}</td><td class="num">{len(e.faults)}</td>'
        f"<td>{escape('; '.join(e.verdict.reasons))}</td></tr>"
        for e in evidence.experiments
    )
    measurements = "".join(
        f"<tr><td>{escape(m.name)}</td><td>{escape(m.experiment)}</td><td class='num'>{len(m.samples) or '–'}</td>"
        f"<td class='num'>{_num(m.p50)}</td><td class='num'>{_num(m.p95)}</td><td class='num'>{_num(m.max)}</td>"
        f"<td class='num'>{_num(m.budget)}</td>"
        f"<td>{ {True: _outcome('PASS'), False: _outcome('OVER'), None: '–'}[m.within_budget] }</td></tr>"
        for m in evidence.measurements
    )
    sections = "".join(_experiment(evidence, e) for e in evidence.experiments)
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Game day {escape(evidence.root.name)}</title>
<style>{CSS}</style></head><body>
<h1>Game day {escape(evidence.root.name)}: {_outcome(outcome.name)} (exit {outcome.exit_code})</h1>
<p>Generated {generated} from <code>{escape(str(evidence.root))}</code>. Files: {escape(', '.join(files))}.</p>
{"".join(f"<p><strong>Substitution in force:</strong> {escape(note)}</p>" for note in evidence.substitutions)}
<table><tr><th>experiment</th><th>outcome</th><th>seconds</th><th>faults</th><th>reasons</th></tr>{summary}</table>
<h2>RTO, RPO, failover and other measurements against their budgets</h2>
{_image(_plot('measurements_against_budgets', evidence.measurements), 'Measurements against budgets')}
<table><tr><th>measurement</th><th>experiment</th><th>n</th><th>p50</th><th>p95</th><th>max</th><th>budget</th>
<th>within</th></tr>{measurements}</table>
{sections}
</body></html>
"""
