"""Reading a Chaos Toolkit journal's steady-state probes, for the tests that judge the game day's results."""
from __future__ import annotations


def _probe_runs(journal: dict, phase: str) -> list[dict]:
    return ((journal.get("steady_states") or {}).get(phase) or {}).get("probes", [])


def probe_outputs(journal: dict, phase: str = "after") -> dict[str, object]:
    """The outputs of a journal's ``phase`` (``before``/``after``) hypothesis, by probe name."""
    return {run["activity"]["name"]: run.get("output") for run in _probe_runs(journal, phase)}


def probe_output(journal: dict, phase: str, probe: str) -> object:
    """One probe's output; fails naming the probe when the hypothesis did not run it."""
    outputs = probe_outputs(journal, phase)
    if probe not in outputs:
        raise AssertionError(f"probe {probe!r} not in the {phase} hypothesis")
    return outputs[probe]


def unmet_probes(journal: dict, phase: str) -> dict[str, object]:
    """The probes of a journal's ``phase`` hypothesis whose tolerance was not met, with their outputs."""
    return {run["activity"]["name"]: run.get("output") for run in _probe_runs(journal, phase)
            if not run.get("tolerance_met")}
