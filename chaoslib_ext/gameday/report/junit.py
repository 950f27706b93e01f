"""JUnit XML for CI: one test case per experiment and one per steady-state probe run."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from chaoslib_ext.gameday.report.model import RunEvidence, short
from chaoslib_ext.gameday.verdict import Outcome


def junit_xml(evidence: RunEvidence) -> str:
    suites = ET.Element("testsuites", name=f"gameday {evidence.root.name}")
    totals = {"tests": 0, "failures": 0}
    for experiment in evidence.experiments:
        suite = ET.SubElement(suites, "testsuite", name=experiment.name)
        if evidence.substitutions:
            properties = ET.SubElement(suite, "properties")
            for note in evidence.substitutions:
                ET.SubElement(properties, "property", name="substitution", value=note)
        cases = failures = 0
        case = ET.SubElement(suite, "testcase", classname=f"gameday.{experiment.name}",
                             name=f"experiment: {experiment.title}", time=f"{experiment.duration or 0:.3f}")
        cases += 1
        if experiment.verdict.outcome is not Outcome.PASS:
            failures += 1
            failure = ET.SubElement(case, "failure", type=experiment.verdict.outcome.name,
                                    message=f"{experiment.verdict.outcome.name} (exit {experiment.verdict.outcome.exit_code})")
            failure.text = "\n".join(experiment.verdict.reasons)
        for probe in experiment.verdict.probes:
            case = ET.SubElement(suite, "testcase", classname=f"gameday.{experiment.name}.{probe.phase}",
                                 name=f"probe: {probe.name}")
            cases += 1
            if probe.met is False or probe.status != "succeeded":
                failures += 1
                failure = ET.SubElement(case, "failure", type="tolerance" if probe.met is False else probe.status,
                                        message=f"{probe.phase}: {probe.name} = {short(probe.output, 200)}")
                failure.text = f"tolerance: {short(probe.tolerance, 400)}" + (
                    f"\n{probe.exception}" if probe.exception else "")
            out = ET.SubElement(case, "system-out")
            out.text = short(probe.output, 2000)
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        totals["tests"] += cases
        totals["failures"] += failures
    suites.set("tests", str(totals["tests"]))
    suites.set("failures", str(totals["failures"]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
