"""Chaos Toolkit actions, probes and controls for verifying chaos and disaster recovery (``chaos discover
chaos-dr-verify --no-install`` lists them)."""
from __future__ import annotations

from typing import Any

__all__ = ["discover"]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """The activities this extension offers, as ``chaos discover`` prints them."""
    from chaoslib_ext.discovery import discover as discover_activities

    return discover_activities(discover_system)
