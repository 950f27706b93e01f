"""``gameday report``: the evidence of a run directory as HTML, JUnit XML and Markdown, written beside it."""
from __future__ import annotations

from pathlib import Path

from chaoslib_ext.gameday.report.model import ReportError, RunEvidence, load_run

REPORT_FILES = ("report.html", "junit.xml", "summary.md")

__all__ = ["REPORT_FILES", "ReportError", "RunEvidence", "load_run", "write_report"]


def write_report(run_root: Path, out_dir: Path | None = None, secrets: set[str] | None = None) -> tuple[RunEvidence, list[Path]]:
    """Write report.html, junit.xml and summary.md into ``out_dir`` (default: ``run_root``); returns the evidence
    and the paths. Raises ReportError when ``run_root`` holds no journal."""
    from chaoslib_ext.gameday.report.html import html_report
    from chaoslib_ext.gameday.report.junit import junit_xml
    from chaoslib_ext.gameday.report.markdown import markdown_summary

    evidence = load_run(Path(run_root), secrets)
    out = Path(out_dir or run_root)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in REPORT_FILES]
    (paths[0]).write_text(html_report(evidence, list(REPORT_FILES)), encoding="utf-8")
    (paths[1]).write_text(junit_xml(evidence), encoding="utf-8")
    (paths[2]).write_text(markdown_summary(evidence, list(REPORT_FILES)), encoding="utf-8")
    return evidence, paths
