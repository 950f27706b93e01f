"""Waiting for a component's instances to be ready again: the rollback of every kill."""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext.errors import BudgetExceeded
from chaoslib_ext.targets import from_configuration

POLL_SECONDS = 0.2


def wait_until_ready(component: str, what: str, timeout: float, configuration: Configuration = None,
                     secrets: Secrets = None) -> dict:
    """Poll the target until every instance of ``component`` is ready. Returns ``{"ready": [names],
    "waited_seconds"}``; BudgetExceeded names the ``what`` (``processor replicas``) still not ready after
    ``timeout`` seconds."""
    started = time.monotonic()
    with from_configuration(configuration, secrets) as target:
        while True:
            instances = target.instances(component)
            not_ready = [i.name for i in instances if not i.ready]
            if instances and not not_ready:
                return {"ready": [i.name for i in instances], "waited_seconds": round(time.monotonic() - started, 3)}
            if time.monotonic() - started > timeout:
                raise BudgetExceeded(f"{what} {', '.join(not_ready) or '(none listed)'} not ready after {timeout} s")
            time.sleep(POLL_SECONDS)
