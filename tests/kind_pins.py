"""The versions deploy/kind/versions.env pins, for the tests that check them and the cluster tests that use them."""
from __future__ import annotations

import re
from pathlib import Path

VERSIONS_ENV = Path(__file__).resolve().parents[1] / "deploy" / "kind" / "versions.env"


def pins() -> dict[str, str]:
    """NAME -> value for every ``NAME=value`` line of deploy/kind/versions.env."""
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", VERSIONS_ENV.read_text(), re.M))
