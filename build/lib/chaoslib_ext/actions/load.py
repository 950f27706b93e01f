"""Load actions: call a service open-loop while faults run, so the provider probes have answers to measure.

Run ``sample_service`` with ``background: true`` first in the method, beside the fault actions, and end the
method with ``stop_sampling``; see ``chaoslib_ext.load``."""
from __future__ import annotations

from chaoslib_ext.load import sample_service, stop_sampling

__all__ = ["sample_service", "stop_sampling"]
